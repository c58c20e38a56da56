"""`evaluate`: run tasks on a model, write per-item results and a summary, resume finished tasks.

Output directory layout:
    <task>.jsonl          per-item results, one JSON object per line
    <task>.metrics.json   metrics, settings, item count and notes of one finished task
    summary.json          {task: {metric: value, "<metric>_stderr": value}}

Each file is written to a temporary name and renamed into place, so an interrupted run leaves only
whole files; a rerun with the same settings skips tasks whose metrics file exists.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from plw.errors import PLWError
from plw.evaluation.model import EvalLM
from plw.evaluation.options import EvalOptions, OptionError, eval_options
from plw.evaluation.tasks import expand_tasks, get_task
from plw.evaluation.tasks.base import Settings, Task, TaskResult
from plw.files import check_output_path, write_text_atomic

log = logging.getLogger(__name__)


def evaluate(
    model: str | Path | EvalLM | tuple,
    options: EvalOptions | str | Iterable[str],
    output_dir: str | Path | None = None,
    *,
    progress: bool = True,
    **fields: Any,
) -> dict[str, dict[str, float]]:
    """Evaluate a model on tasks.

        evaluate(lm, EvalOptions(tasks=["piqa"], limit=100), "out")
        evaluate(lm, "arc_easy,piqa", data_dir="bench", limit=100)    # the same, options as keywords

    Args:
        model: a model spec (name, directory, GGUF, or LoRA adapter directory), an `EvalLM`, or a
            (transformers model, tokenizer) pair.
        options: an `EvalOptions` (validated when built, used as it is), or task names or aliases
            (a list or a comma-separated string) with the other `EvalOptions` fields as `fields`.
        output_dir: where to write results; enables resuming.
        progress: show a progress bar.
        fields: `EvalOptions` fields (`data_dir`, `limit`, `batch_size`, `judge`, ...); with an
            `EvalOptions`, they replace its values.

    Returns:
        {task: {metric: value}}, stderr values as "<metric>_stderr" (the content of summary.json).

    Raises:
        OptionError: a field in `fields` that is unknown or breaks its rule (`plw.evaluation.options`),
            before any model loads.
        PLWError: unknown task, missing or malformed data, unusable output directory, unloadable
            model or judge.
    """
    options = _as_options(options, fields)
    names = expand_tasks(options.tasks)
    if options.data_dir is not None and not options.data_dir.is_dir():
        raise PLWError(f"data directory not found: {options.data_dir}")
    out = (
        check_output_path(output_dir, kind="dir", what="output directory") if output_dir is not None else None
    )
    settings = Settings(
        data_dir=options.data_dir,
        limit=options.limit,
        num_fewshot=options.num_fewshot,
        seed=options.seed,
        max_new_tokens=options.max_new_tokens,
        template=options.template,
        output_dir=out,  # alpaca_eval keeps its generations there before judging
    )
    if "alpaca_eval" in names and options.judge is None:  # before the model loads
        raise OptionError("judge", "task alpaca_eval needs a judge (local, endpoint, local:MODEL or a YAML)")
    lm = resolve_lm(model, adapter=options.adapter, dtype=options.dtype, batch_size=options.batch_size)
    if options.chat_template is not None:
        from plw.data.chat_templates import apply_chat_template

        apply_chat_template(getattr(lm, "tokenizer", lm), options.chat_template, key="chat_template")
    if "alpaca_eval" in names:
        settings.judge = _resolve_judge(options.judge)
    key = _settings_key(lm, settings)
    if options.chat_template is not None:  # a task finished under another template is rerun
        key["chat_template"] = hashlib.sha256(lm.tokenizer.chat_template.encode()).hexdigest()[:16]
    pending = [n for n in names if out is None or not _finished(out, n, key)]
    # Load and validate all data before running anything: a bad file fails fast, not after hours.
    loaded = {n: (task := get_task(n), task.load(settings)) for n in pending}
    results = _read_results(out, [n for n in names if n not in pending]) if out else {}
    with _Progress(progress) as bar:
        for name in pending:
            task, rows = loaded[name]
            result = _run_task(task, lm, rows, settings, bar)
            results[name] = result.metrics
            results.update(result.extra)
            if out is not None:
                _write_task(out, name, result, key, len(rows))
                # The summary covers every task finished in `out`, including earlier runs' tasks.
                _write_json(out / "summary.json", _read_results(out, None))
    return results


def _as_options(options: EvalOptions | str | Iterable[str], fields: dict[str, Any]) -> EvalOptions:
    """`options` as they are, or validated once from task names (or `options`' values) and `fields`."""
    if not isinstance(options, EvalOptions):
        return eval_options(tasks=options, **fields)
    # dict(): field values as they are (a Judge object stays one), not dumped.
    return eval_options(**{**dict(options), **fields}) if fields else options


def resolve_lm(model, *, adapter=None, dtype: str = "float32", batch_size: int = 16) -> EvalLM:
    """An `EvalLM` from a spec, an `EvalLM`, or a (model, tokenizer) pair."""
    if isinstance(model, EvalLM):
        return model
    from plw.evaluation.hf import HFModel

    if isinstance(model, tuple) and len(model) == 2:
        return HFModel(model[0], model[1], batch_size=batch_size)
    if isinstance(model, str | Path):
        return HFModel.from_spec(
            str(model), adapter=str(adapter) if adapter else None, dtype=dtype, batch_size=batch_size
        )
    raise PLWError(
        f"cannot evaluate a {type(model).__name__}: pass a model spec, an EvalLM or (model, tokenizer)"
    )


def _resolve_judge(judge):
    if isinstance(judge, str | Path):
        from plw.evaluation.judges import load_judge

        return load_judge(judge)
    return judge


def _run_task(task: Task, lm: EvalLM, rows: list[dict], settings: Settings, bar) -> TaskResult:
    task_id = bar.add_task(task.name, total=None) if bar else None
    settings.start = (lambda total: bar.update(task_id, total=total)) if bar else (lambda total: None)
    settings.advance = (lambda n: bar.advance(task_id, n)) if bar else (lambda n: None)
    result = task.run(lm, rows, settings)
    for note in result.notes:
        log.warning(note)
    return result


def _settings_key(lm: EvalLM, settings: Settings) -> dict:
    data = str(settings.data_dir.resolve()) if settings.data_dir else "hub"
    return {"model": lm.name, "data": data, **settings.settings_key()}


def _safe(name: str) -> str:
    return name.replace(":", "_").replace("/", "_")


def _finished(out: Path, name: str, key: dict) -> bool:
    path = out / f"{_safe(name)}.metrics.json"
    if not path.is_file() or not (out / f"{_safe(name)}.jsonl").is_file():
        return False
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    if record.get("settings") != key:
        log.info("%s: earlier results used other settings; rerunning", name)
        return False
    return True


def _read_results(out: Path, names: list[str] | None) -> dict:
    """Metrics of tasks finished in `out` (all of them when `names` is None), from their metrics files."""
    paths = (
        [out / f"{_safe(n)}.metrics.json" for n in names]
        if names is not None
        else sorted(out.glob("*.metrics.json"))
    )
    results = {}
    for path in paths:
        if path.is_file():
            record = json.loads(path.read_text())
            results[record["task"]] = record["metrics"]
            results.update(record.get("extra", {}))
    return results


def _write_task(out: Path, name: str, result: TaskResult, key: dict, n_rows: int) -> None:
    lines = "".join(json.dumps(item, ensure_ascii=False, default=str) + "\n" for item in result.items)
    _write_text(out / f"{_safe(name)}.jsonl", lines)
    record = {
        "task": name,
        "metrics": result.metrics,
        "extra": result.extra,
        "settings": key,
        "n_items": n_rows or len(result.items),
        "notes": result.notes,
    }
    _write_json(out / f"{_safe(name)}.metrics.json", record)


def _write_json(path: Path, data: Any) -> None:
    _write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def _write_text(path: Path, text: str) -> None:
    """Write atomically (see `plw.files`): a rerun finds whole files or none."""
    write_text_atomic(path, text)


class _Progress:
    """A rich progress bar on stderr (or nothing)."""

    def __init__(self, enabled: bool):
        self.enabled, self.bar = enabled, None

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )
            self.bar.__enter__()
        return self.bar

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
