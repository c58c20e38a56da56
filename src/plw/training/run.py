"""The `plw train` job: config in, trained model, logs and metrics out.

Output directory layout:
    config.yaml        the resolved config (PLW 'auto' replaced by its value)
    model/             the model (full fine-tuning) or LoRA adapter, with the tokenizer
    log_history.json   Trainer's log history (loss, prompt_loss, completion_loss, eval_* ...)
    metrics.json       final losses (per part too), tokenisation counts, run facts

A run reads each data source at most once: PLW 'auto' and the tokenisation share one read, and a
cached tokenisation needs none.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plw.batch import PARTS
from plw.config import dump_yaml
from plw.data.options import EncodeOptions
from plw.data.weights import TokenWeights
from plw.errors import PLWError
from plw.files import check_output_path, write_text_atomic
from plw.models import resolve_model
from plw.training.config import DataConfig, TrainConfig

log = logging.getLogger("plw.train")


def check_resources(config: TrainConfig) -> None:
    """Fail early, before any model loads, on a model or tokenizer that cannot be found."""
    resolve_model(config.model)
    if config.tokenizer:
        resolve_model(config.tokenizer)


def record_reader(data: DataConfig) -> Callable[[], list]:
    """The records of `data`, read on the first call and kept for later ones."""
    from plw.data.load import load_records

    return functools.cache(
        lambda: load_records(data.path, config=data.config, split=data.split, limit=data.limit)
    )


def encode_options(data: DataConfig, config: TrainConfig) -> EncodeOptions:
    """The tokenisation options of a data source in a run (also the tokenisation cache's key)."""
    same = ("template", "assistant_turns", "skip_bad_records", "sample_weight_field")
    run = {"fmt": data.format, "max_length": config.max_length, "truncation": config.truncation}
    return EncodeOptions(**run, **{key: getattr(data, key) for key in same})


def build_dataset(
    data: DataConfig,
    tokenizer: Any,
    config: TrainConfig,
    weights: TokenWeights,
    *,
    use_cache: bool = True,
    records: Callable[[], list] | None = None,
):
    """Encode records (cached), check them against the run's weights, optionally pack: (Dataset, report).

    The dataset is weight-free (`plw.data.tokenize.FEATURES`; packed rows add `seq_lengths`): the
    run's collator weighs it. `weights` only refuse (or skip) an example that weighs nothing and
    name a configured weight that reaches no token.

    Args:
        records: gives the records when they must be encoded (see `record_reader`).
    """
    from datasets import Dataset

    from plw.data.cache import encode_cached
    from plw.data.collator import pack_examples
    from plw.data.tokenize import check_trainable, features

    options = encode_options(data, config)
    examples, report = encode_cached(
        data.model_dump(), tokenizer, options, use_cache=use_cache, records=records
    )
    kept = check_trainable(examples, weights, skip_bad_records=data.skip_bad_records, report=report)
    if not kept:
        raise PLWError(
            f"{data.path}: no usable examples after tokenisation ({report.dropped} dropped as too long, "
            f"{len(report.skipped)} skipped)"
        )
    warn_unreached_weights(weights, examples, data.path)
    rows = [features(e) for e in kept]
    if config.packing:
        rows = pack_examples(rows, config.max_length)
    return Dataset.from_list(rows), report


def warn_unreached_weights(weights: TokenWeights, examples: list[dict], where: str) -> None:
    """Log each configured weight that applies to no token of `examples`: never ignore one silently."""
    from plw.data.show import part_side_counts, unreached_weights

    for key in unreached_weights(weights, part_side_counts(examples)):
        log.warning("%s applies to no token of %s, so it has no effect", key, where)


def resolve_prompt_loss_weight(
    config: TrainConfig, tokenizer: Any, records: Callable[[], list] | None = None
) -> tuple[float, str]:
    """The PLW to train with, and a note on where it came from ('auto' uses the data's Rg).

    Args:
        records: gives the training records (see `record_reader`); default: read them here.
    """
    if config.prompt_loss_weight != "auto":
        return float(config.prompt_loss_weight), "given"
    from plw.data.guidance import recommend_plw
    from plw.data.stats import generation_ratio

    data = config.data
    records = records or record_reader(data)
    ratio = generation_ratio(records(), tokenizer, fmt=data.format, skip_bad_records=data.skip_bad_records)
    advice = recommend_plw(ratio)
    log.info("prompt_loss_weight auto -> %s: %s", advice.plw, advice.reason)
    return advice.plw, advice.reason


def training_arguments(config: TrainConfig, has_eval: bool):
    """TrainingArguments from the config (see `plw.training.arguments`)."""
    from plw.training.arguments import training_arguments as build

    try:
        return build(config, has_eval)
    except (ValueError, TypeError) as err:  # validation built them already; kept for configs made in code
        raise PLWError(f"trainer settings: {str(err).splitlines()[0]}") from err


def apply_lora(model: Any, config: TrainConfig) -> Any:
    """Wrap the model in LoRA adapters when configured."""
    if config.lora is None:
        return model
    from peft import LoraConfig, get_peft_model
    from transformers import set_seed

    # The adapters' A matrices are drawn at random here, before Trainer seeds anything: without this,
    # two runs of one config (or one sweep cell and its rerun) start from different adapters.
    set_seed(config.seed)
    lora = config.lora
    peft_config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, peft_config)


def train(
    config: TrainConfig, *, progress: bool = True, use_cache: bool = True, callbacks: list | None = None
) -> dict[str, Any]:
    """Run a PLW fine-tune and write its outputs; return the final metrics.

    Args:
        config: a validated TrainConfig.
        progress: show a rich progress bar.
        use_cache: reuse cached tokenisations.
        callbacks: extra `transformers.TrainerCallback`s (a sweep cell reports its step with one).

    Raises:
        plw.preemption.Preempted: SIGTERM or SIGUSR1 arrived before the last step; a checkpoint of
            the step reached was saved, which a rerun into the same output_dir resumes from.
    """
    from plw import preemption

    with preemption.handling():
        return _train(config, progress=progress, use_cache=use_cache, callbacks=callbacks)


def _train(config: TrainConfig, *, progress: bool, use_cache: bool, callbacks: list | None) -> dict[str, Any]:
    out = check_output_path(config.output_dir, kind="dir", what="output_dir")  # not after hours of training
    from trl.trainer.callbacks import RichProgressCallback

    from plw.models import load_model, load_tokenizer

    check_resources(config)
    tokenizer = load_tokenizer(config.tokenizer or config.model, chat_template=config.chat_template)
    records = record_reader(config.data)  # read at most once: PLW 'auto' and tokenisation share them
    plw, plw_source = resolve_prompt_loss_weight(config, tokenizer, records)
    weights = config.token_weights(plw)
    train_set, train_report = build_dataset(
        config.data, tokenizer, config, weights, use_cache=use_cache, records=records
    )
    eval_set, eval_report = (None, None)
    if config.eval_data is not None:
        eval_set, eval_report = build_dataset(
            config.eval_data, tokenizer, config, weights, use_cache=use_cache
        )
    model = apply_lora(
        load_model(config.model, dtype="float32", dropout=config.regularization.dropout), config
    )
    extra = ([RichProgressCallback()] if progress else []) + list(callbacks or [])
    trainer = build_trainer(config, model, tokenizer, weights, train_set, eval_set, extra)
    result = trainer.train(resume_from_checkpoint=resume_point(out, config))
    stop_if_preempted(trainer, out)
    trainer.remove_callback(RichProgressCallback)  # its bars are closed once training ends
    final_eval = trainer.evaluate() if eval_set is not None else {}
    metrics = final_metrics(trainer.state.log_history, result.metrics, final_eval)
    metrics.update(
        prompt_loss_weight=plw,
        prompt_loss_weight_source=plw_source,
        tokenization={"train": train_report.as_dict(), "eval": eval_report and eval_report.as_dict()},
    )
    if trainer.is_world_process_zero():
        write_outputs(out, config.model_copy(update={"prompt_loss_weight": plw}), trainer, metrics)
    return metrics


def build_trainer(config: TrainConfig, model, tokenizer, weights, train_set, eval_set, callbacks: list):
    """The run's PLWTrainer; its collator weighs every batch by the run's token weights `weights`."""
    from plw.data.collator import PLWDataCollator
    from plw.training.callbacks import LogLastStep, StopOnNonFinite, StopOnPreemption
    from plw.training.trainer import PLWTrainer

    return PLWTrainer(
        model=model,
        args=training_arguments(config, eval_set is not None),
        train_dataset=train_set,
        eval_dataset=eval_set,
        processing_class=tokenizer,
        data_collator=PLWDataCollator(tokenizer.pad_token_id, padding_free=config.packing, weights=weights),
        callbacks=[LogLastStep(), StopOnNonFinite(), StopOnPreemption(), *callbacks],
        loss=config.loss,
    )


def resume_point(out: Path, config: TrainConfig) -> str | None:
    """The checkpoint to resume from, also without checkpoint_steps: a preempted run leaves the
    checkpoint of the step it stopped at."""
    resume = latest_checkpoint(out, needs_optimizer=not config.trainer_args.get("save_only_model", False))
    if resume is not None:
        log.info("resuming from %s", resume)
    return resume


def stop_if_preempted(trainer: Any, out: Path) -> None:
    """Raise `Preempted` when a signal stopped training before its last step (checkpoint saved)."""
    from plw import preemption

    step, steps = trainer.state.global_step, trainer.state.max_steps
    if preemption.requested() and step < steps:
        raise preemption.Preempted(
            f"preempted by {preemption.requested()} at step {step} of {steps}: checkpoint saved in "
            f"{out / 'checkpoints' / f'checkpoint-{step}'}; rerun the same command to resume"
        )


def latest_checkpoint(out: Path, *, needs_optimizer: bool = True) -> str | None:
    """The newest complete Trainer checkpoint under OUT/checkpoints (a run cut off mid-way), or None.

    Half-written checkpoints are set aside, never resumed from (see `plw.training.checkpoints`).
    """
    from plw.training.checkpoints import resumable_checkpoint

    found = resumable_checkpoint(out / "checkpoints", needs_optimizer=needs_optimizer)
    return None if found is None else str(found)


# The losses logged during training whose last value is kept as final_<key>: the total, and one per
# part (prompt_loss, completion_loss, and user_loss, assistant_loss, ... for chat data).
LOGGED_LOSSES: tuple[str, ...] = ("loss", *(f"{part}_loss" for part in PARTS))


def final_metrics(history: list[dict], train_metrics: dict, eval_metrics: dict) -> dict[str, Any]:
    """The last logged total and per-part losses plus Trainer's run metrics."""
    metrics: dict[str, Any] = dict(train_metrics)
    for entry in history:
        for key in LOGGED_LOSSES:
            if key in entry:
                metrics[f"final_{key}"] = entry[key]
    metrics.update(eval_metrics)
    return metrics


def write_outputs(out: Path, config: TrainConfig, trainer: Any, metrics: dict[str, Any]) -> None:
    """Write config.yaml, log_history.json, metrics.json and (optionally) the model."""
    out.mkdir(parents=True, exist_ok=True)
    dump_yaml(config, out / "config.yaml")
    _write_json(out / "log_history.json", trainer.state.log_history)
    if config.save_model:
        trainer.save_model(str(out / "model"))
    _write_json(out / "metrics.json", metrics)  # last: its presence marks a finished run


def _write_json(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, default=str))
