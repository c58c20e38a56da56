"""A cell that failed after training reruns only what came after it, unless its training config changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import TINY, shared

from plw.experiment.celldir import RESULT, error_line, finished_training, read_json
from plw.experiment.driver import run_sweep
from plw.experiment.executor_local import LocalExecutor
from plw.experiment.study import load_study


def study(out: Path, data_dir: Path, *extra: str):
    return load_study(TINY, [
        f"models.stories260K={shared('models/stories260K')}",
        f"datasets.alpaca.path={shared('instruct/alpaca_5000.json')}",
        f"eval.data_dir={data_dir}", "eval.tasks=[arc_easy]", "eval.limit=4", "factors.plw=[0.1]",
        f"output_dir={out}", *extra,
    ])  # fmt: skip


def sweep(s, **kw) -> tuple[str, Path]:
    states = run_sweep(s, source=str(TINY), executor=LocalExecutor(isolate=False), **kw)
    (cell,) = states
    return states[cell], s.directory() / "cells" / cell


def empty_dir(tmp_path: Path) -> Path:
    """A benchmark folder without the benchmark's file: the cell trains, then its evaluation fails."""
    (tmp_path / "no-benchmarks").mkdir(exist_ok=True)
    return tmp_path / "no-benchmarks"


def test_retry_after_an_eval_failure_keeps_the_training(tmp_path):
    bench = shared("bench")
    state, cell = sweep(study(tmp_path / "study", empty_dir(tmp_path)))
    assert state == "failed" and finished_training(cell)  # trained, then the benchmark file was missing
    assert "ARC-Easy" in error_line(cell)
    trained_at = (cell / "train" / "metrics.json").stat().st_mtime_ns

    state, cell = sweep(study(tmp_path / "study", bench), retry_failed=True)
    result = read_json(cell / RESULT)
    assert state == "done" and result["run"]["training_reused"] is True
    assert (cell / "train" / "metrics.json").stat().st_mtime_ns == trained_at
    assert {r["metric"] for r in result["rows"] if r["task"] == "arc_easy"} >= {"acc", "acc_norm"}


def test_a_changed_training_config_retrains(tmp_path):
    state, cell = sweep(study(tmp_path / "study", empty_dir(tmp_path)))
    assert state == "failed" and finished_training(cell)
    changed = study(tmp_path / "study", shared("bench"), "train.learning_rate=0.002")
    state, cell = sweep(changed, retry_failed=True)
    result = json.loads((cell / RESULT).read_text())
    assert state == "done" and result["run"]["training_reused"] is False


@pytest.mark.parametrize("missing", ["metrics.json", "model"])
def test_an_unfinished_training_is_not_kept(tmp_path, missing):
    from plw.experiment.celldir import reset

    cell = tmp_path / "cell"
    (cell / "train" / "model").mkdir(parents=True)
    (cell / "train" / "metrics.json").write_text("{}")
    (cell / "error.txt").write_text("boom")
    target = cell / "train" / missing
    target.rmdir() if target.is_dir() else target.unlink()
    assert not finished_training(cell)
    reset(cell, keep_training=finished_training(cell))
    assert list(cell.iterdir()) == []


def test_a_checkpointed_training_is_kept_for_resuming(tmp_path):
    from plw.experiment.celldir import reset, resumable_training

    cell = tmp_path / "cell"
    (cell / "train" / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    (cell / "status.json").write_text("{}")
    assert resumable_training(cell) and not finished_training(cell)
    reset(cell, keep_training=resumable_training(cell))
    assert [p.name for p in cell.iterdir()] == ["train"]
