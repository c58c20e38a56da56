"""The `plw train` job: config in, trained model, logs and metrics out.

Output directory layout:
    config.yaml        the resolved config (PLW 'auto' replaced by its value)
    model/             the model (full fine-tuning) or LoRA adapter, with the tokenizer
    log_history.json   Trainer's log history (loss, prompt_loss, completion_loss, eval_* ...)
    metrics.json       final prompt and completion losses, tokenisation counts, run facts
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from plw.config import dump_yaml
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


def build_dataset(
    data: DataConfig, tokenizer: Any, config: TrainConfig, plw: float, *, use_cache: bool = True
):
    """Encode records (cached), add weights for `plw`, optionally pack; return (Dataset, report)."""
    from datasets import Dataset

    from plw.data.cache import encode_cached
    from plw.data.collator import pack_examples
    from plw.data.tokenize import add_weights

    examples, report = encode_cached(
        data.model_dump(),
        tokenizer,
        use_cache=use_cache,
        fmt=data.format,
        template=data.template,
        max_length=config.max_length,
        truncation=config.truncation,
        assistant_turns=data.assistant_turns,
        skip_bad_records=data.skip_bad_records,
    )
    if not examples:
        raise PLWError(
            f"{data.path}: no usable examples after tokenisation ({report.dropped} dropped as too long)"
        )
    features = [add_weights(e, plw) for e in examples]
    if config.packing:
        features = pack_examples(features, config.max_length)
    return Dataset.from_list(features), report


def resolve_prompt_loss_weight(config: TrainConfig, tokenizer: Any) -> tuple[float, str]:
    """The PLW to train with, and a note on where it came from ('auto' uses the data's Rg)."""
    if config.prompt_loss_weight != "auto":
        return float(config.prompt_loss_weight), "given"
    from plw.data.guidance import recommend_plw
    from plw.data.sources import load_records
    from plw.data.stats import generation_ratio

    records = load_records(
        config.data.path, config=config.data.config, split=config.data.split, limit=config.data.limit
    )
    ratio = generation_ratio(
        records, tokenizer, fmt=config.data.format, skip_bad_records=config.data.skip_bad_records
    )
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
    """
    out = check_output_path(config.output_dir, kind="dir", what="output_dir")  # not after hours of training
    from trl.trainer.callbacks import RichProgressCallback

    from plw.models import load_model, load_tokenizer
    from plw.training.callbacks import LogLastStep, StopOnNonFinite
    from plw.training.trainer import PLWTrainer

    check_resources(config)
    tokenizer = load_tokenizer(config.tokenizer or config.model)
    plw, plw_source = resolve_prompt_loss_weight(config, tokenizer)
    train_set, train_report = build_dataset(config.data, tokenizer, config, plw, use_cache=use_cache)
    eval_set, eval_report = (None, None)
    if config.eval_data is not None:
        eval_set, eval_report = build_dataset(config.eval_data, tokenizer, config, plw, use_cache=use_cache)
    model = load_model(config.model, dtype="float32", dropout=config.regularization.dropout)
    model = apply_lora(model, config)
    from plw.data.collator import PLWDataCollator

    trainer = PLWTrainer(
        model=model,
        args=training_arguments(config, eval_set is not None),
        train_dataset=train_set,
        eval_dataset=eval_set,
        processing_class=tokenizer,
        data_collator=PLWDataCollator(tokenizer.pad_token_id, plw, padding_free=config.packing),
        callbacks=[LogLastStep(), StopOnNonFinite()]
        + ([RichProgressCallback()] if progress else [])
        + list(callbacks or []),
        prompt_loss_weight=plw,
        normalizer=config.normalizer,
        label_smoothing=config.regularization.label_smoothing,
        minkowski_lambda=config.regularization.minkowski_lambda,
        minkowski_p=config.regularization.minkowski_p,
        loss_impl=config.loss_impl,
        chunk_size=config.chunk_size,
    )
    needs_optimizer = not config.trainer_args.get("save_only_model", False)
    resume = latest_checkpoint(out, needs_optimizer=needs_optimizer) if config.checkpoint_steps else None
    if resume is not None:
        log.info("resuming from %s", resume)
    result = trainer.train(resume_from_checkpoint=resume)
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


def latest_checkpoint(out: Path, *, needs_optimizer: bool = True) -> str | None:
    """The newest complete Trainer checkpoint under OUT/checkpoints (a run cut off mid-way), or None.

    Half-written checkpoints are set aside, never resumed from (see `plw.training.checkpoints`).
    """
    from plw.training.checkpoints import resumable_checkpoint

    found = resumable_checkpoint(out / "checkpoints", needs_optimizer=needs_optimizer)
    return None if found is None else str(found)


def final_metrics(history: list[dict], train_metrics: dict, eval_metrics: dict) -> dict[str, Any]:
    """The last logged prompt/completion losses plus Trainer's run metrics."""
    metrics: dict[str, Any] = dict(train_metrics)
    for entry in history:
        for key in ("loss", "prompt_loss", "completion_loss"):
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
