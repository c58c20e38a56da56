"""The default cell runner: train, evaluate on the benchmarks, take the mechanism measures.

Runs inside a worker (a subprocess or a Ray task). The trained model is loaded once for the
benchmarks and the measures; with `keep_models: false` it is deleted afterwards.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from plw import preemption
from plw.experiment.celldir import CONFIG, CellSpec, finished_training, set_stage, write_status

log = logging.getLogger("plw.experiment")


def score_rows(scores: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows (task, metric, value, stderr) from `evaluate`'s {task: {metric: value, metric_stderr: e}}."""
    rows = []
    for task, metrics in scores.items():
        if not isinstance(metrics, dict):
            continue
        for name, value in metrics.items():
            if name.endswith("_stderr") or not isinstance(value, int | float) or isinstance(value, bool):
                continue
            stderr = metrics.get(f"{name}_stderr")
            stderr = float(stderr) if isinstance(stderr, int | float) and math.isfinite(stderr) else None
            rows.append({"task": task, "metric": name, "value": float(value), "stderr": stderr})
    return rows


def _train_facts(metrics: dict[str, Any], train_time: float) -> dict[str, Any]:
    """Tokens trained on and training times, from training's metrics.json."""
    report = (metrics.get("tokenization") or {}).get("train") or {}
    per_epoch = (report.get("prompt_tokens") or 0) + (report.get("completion_tokens") or 0)
    epochs = float(metrics.get("epoch") or 0.0)
    runtime = metrics.get("train_runtime")
    return {
        "train_tokens": per_epoch * epochs if per_epoch and epochs else None,
        "train_time_s": float(runtime) if runtime else None,
        "train_stage_s": train_time,
    }


def load_trained(model_dir: Path, base_spec: str, tokenizer_spec: str, chat_template: str | None = None):
    """(model in eval mode, tokenizer) of a trained cell; a LoRA adapter is merged into its base.

    `chat_template` is the cell's `chat_template` (the tokenizer it trained with carries it).
    """
    import gc

    import torch

    from plw.models import load_model, load_tokenizer

    gc.collect()  # the training run's model and optimizer state are garbage by now: free them first
    if torch.cuda.is_available():
        torch.cuda.empty_cache()

    tokenizer = load_tokenizer(tokenizer_spec, chat_template=chat_template)
    if (model_dir / "adapter_config.json").is_file():
        from peft import PeftModel

        model = PeftModel.from_pretrained(load_model(base_spec), str(model_dir)).merge_and_unload()
    else:
        model = load_model(str(model_dir))
    if torch.cuda.is_available():  # measure on the GPU the cell trained on
        model = model.to("cuda")
    return model.eval(), tokenizer


def launch_training(launcher: list[str], cell_dir: Path, config) -> dict[str, Any]:
    """Train with `<launcher> -m plw train config.yaml` (torchrun, accelerate launch) and read its metrics.

    Raises:
        RuntimeError: the launched training failed (its output is in the cell's worker.log).
    """
    command = [*launcher, "-m", "plw", "train", str(cell_dir / CONFIG)]
    log.info("launching: %s", " ".join(command))
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    forwarded = False
    while True:
        try:
            code = process.wait(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            # A preempted worker passes the signal on: the launched processes checkpoint and exit.
            signum = preemption.requested_signal()
            if signum is not None and not forwarded:
                process.send_signal(signum)
                forwarded = True
    if code != 0 and preemption.requested():
        why = f"preempted by {preemption.requested()}: the launched training exited {code}"
        raise preemption.Preempted(why)
    if code != 0:
        raise RuntimeError(f"training command exited with code {code}: {' '.join(command)}")
    return json.loads((Path(config.output_dir) / "metrics.json").read_text())


def step_reporter(cell_dir: Path, every_s: float = 2.0):
    """A TrainerCallback that records the optimizer step in the cell's status, for the sweep display.

    At most one write every `every_s` seconds (and the last step): a status write is fsynced, and a
    GPU step can take milliseconds.
    """
    from transformers import TrainerCallback

    class StepReporter(TrainerCallback):
        last = 0.0

        def on_step_end(self, args, state, control, **kwargs):
            now = time.time()
            final = state.global_step == state.max_steps
            if state.is_world_process_zero and (final or now - self.last >= every_s):
                self.last = now
                write_status(cell_dir, "running", step=state.global_step, steps=state.max_steps)

    return StepReporter()


def _stage(cell_dir: Path, name: str) -> None:
    """Enter a stage; a preempted cell stops here, between stages, or in training at a step boundary."""
    preemption.check()
    set_stage(cell_dir, name)


def run_cell(spec: CellSpec, cell_dir: Path) -> dict[str, Any]:
    """Train the cell's model, evaluate it and measure it.

    Returns:
        {"rows": [{task, metric, value, stderr}], "layers": [{layer, metric, value}], "run": {...}}.
    """
    from plw.config import load_config
    from plw.experiment.mechanisms import measure
    from plw.experiment.study import EvalSettings
    from plw.training.config import TrainConfig
    from plw.training.run import train

    settings = EvalSettings.model_validate(spec.eval)
    config = load_config(TrainConfig, cell_dir / CONFIG)
    _stage(cell_dir, "train")
    start = time.time()
    reused = finished_training(cell_dir)  # the driver keeps train/ only for an unchanged config
    if reused:
        log.info("reusing the finished training in %s", config.output_dir)
        metrics = json.loads((Path(config.output_dir) / "metrics.json").read_text())
    elif spec.launcher:
        metrics = launch_training(spec.launcher, cell_dir, config)
    else:
        metrics = train(config, progress=False, callbacks=[step_reporter(cell_dir)])
    run = {**_train_facts(metrics, time.time() - start), "training_reused": reused}
    train_dir = Path(config.output_dir)
    rows: list[dict[str, Any]] = []
    model = tokenizer = None
    needs_model = (
        settings.tasks
        or settings.memorization_samples
        or settings.validation_loss
        or settings.retention_prompts
    )
    if needs_model:
        model, tokenizer = load_trained(
            train_dir / "model", spec.base_model, config.tokenizer or config.model, config.chat_template
        )
    if settings.tasks:
        _stage(cell_dir, "eval")
        start = time.time()
        rows += evaluate_cell(settings, (model, tokenizer), cell_dir / "eval")
        run["eval_time_s"] = time.time() - start
    _stage(cell_dir, "mechanisms")
    start = time.time()
    measured, layers = measure(config, train_dir, settings, spec.base_model, model=model, tokenizer=tokenizer)
    rows += measured
    if settings.retention_prompts:
        rows += retention_rows(settings, model, spec.base_model)
    run["mechanisms_time_s"] = time.time() - start
    if not spec.keep_model:
        shutil.rmtree(train_dir / "model", ignore_errors=True)
    return {"rows": rows, "layers": layers, "run": run}


def evaluate_cell(settings, lm: Any, out: Path) -> list[dict[str, Any]]:
    """Benchmark rows for a loaded (model, tokenizer) pair, with outputs in `out`."""
    from plw.evaluation.options import BenchmarkOptions, EvalOptions
    from plw.evaluation.run import evaluate

    # The study's eval: section extends BenchmarkOptions; those fields are evaluate's options.
    options = EvalOptions(**{name: getattr(settings, name) for name in BenchmarkOptions.model_fields})
    scores = evaluate(lm, options, out, progress=False)
    return score_rows(scores)


def retention_rows(settings, model: Any, base_model: str) -> list[dict[str, Any]]:
    """Rows of task `retention`: the KL estimate from the base model and both NLLs."""
    from plw.evaluation.retention import retention
    from plw.models import cache_dir

    options = {"n_prompts": settings.retention_prompts, "max_new_tokens": settings.retention_max_new_tokens}
    values = retention(model, base_model, cache_dir() / "retention", **options)
    return [{"task": "retention", "metric": k, "value": v, "stderr": None} for k, v in values.items()]
