"""Real tiny cells (stories260K): a finished study's exports resume a fresh, larger study, which then
trains only its missing cell; the per-item rows of real ARC evaluations survive the round trip."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from support import TINY, shared

from plw.analysis.items import check_item_sets
from plw.analysis.results import load_results
from plw.experiment.celldir import RESULT, read_json
from plw.experiment.driver import run_sweep
from plw.experiment.executor_local import LocalExecutor
from plw.experiment.imported import load_imports
from plw.experiment.store import ResultStore, export
from plw.experiment.store_items import export_items
from plw.experiment.store_rebuild import study_items
from plw.experiment.study import load_study

pytestmark = pytest.mark.slow


def tiny(output_dir: Path, plw: str):
    """The tiny study, one optimizer step, 4 ARC items, no mechanism extras (same settings each time)."""
    return load_study(TINY, [
        f"models.stories260K={shared('models/stories260K')}",
        f"datasets.alpaca.path={shared('instruct/alpaca_5000.json')}",
        f"eval.data_dir={shared('bench')}",
        "eval.tasks=[arc_easy]", "eval.limit=4", "eval.memorization_samples=0", "eval.validation_loss=false",
        "eval.weight_distance=false", "train.max_steps=1", f"factors.plw={plw}", f"output_dir={output_dir}",
    ])  # fmt: skip


def test_exports_of_a_finished_study_resume_a_fresh_one(tmp_path):
    in_process = LocalExecutor(isolate=False)  # no worker start-up: the test stays a few seconds
    run_sweep(tiny(tmp_path / "done", "[0.0]"), source=str(TINY), executor=in_process)
    store = ResultStore(tmp_path / "done" / "results.sqlite")
    export(store.results(), tmp_path / "results.csv", "csv")
    export_items(store.items(factors=False), tmp_path / "items.csv.gz")
    assert set(store.items().metric) >= {"acc", "acc_norm", "margin"}

    fresh = tmp_path / "fresh"
    imports = load_imports(tmp_path / "results.csv", tmp_path / "items.csv.gz")
    states = run_sweep(tiny(fresh, "[0.0, 1.0]"), source=str(TINY), executor=in_process, imports=imports)
    assert set(states.values()) == {"done"}
    ran = {d.name for d in (fresh / "cells").iterdir() if (d / "train").is_dir()}
    assert ran == {"plw=1__model=stories260K__dataset=alpaca__seed=0__reg=none"}
    imported = fresh / "cells" / "plw=0__model=stories260K__dataset=alpaca__seed=0__reg=none"
    assert read_json(imported / RESULT)["run"]["imported_from"] == str(tmp_path / "results.csv")

    items = study_items(fresh)
    old = store.items()
    pd.testing.assert_frame_equal(items[items.plw == 0.0].reset_index(drop=True), old)
    assert check_item_sets(items, load_results(fresh)) == []  # both cells answered the same 4 items
    assert sorted(set(items["item"])) == ["0", "1", "2", "3"]
