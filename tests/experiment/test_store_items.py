"""The store's per-item table: filled from eval/*.jsonl by the driver, refilled by a rebuild, and
added to stores written before it existed."""

from __future__ import annotations

import sqlite3

import pandas as pd
import sweep_support
from support import write_jsonl

from plw.experiment.driver import run_sweep
from plw.experiment.executor_local import LocalExecutor
from plw.experiment.store import ResultStore
from plw.experiment.store_items import ITEMS_FILE, write_cell_items
from plw.experiment.store_rebuild import open_store, rebuild_from_cells
from plw.experiment.store_schema import damage

FACTORS = ["study", "cell", "model", "dataset", "plw", "seed", "regularizer"]
ITEMS = ["task", "item", "metric", "value", "item_hash"]


def with_items(spec, cell_dir):
    """A fake cell that leaves an eval/ directory behind: 3 ARC items whose acc depends on the PLW."""
    result = sweep_support.ok(spec, cell_dir)
    (cell_dir / "eval").mkdir()
    plw = spec.factors["plw"]
    lines = [
        {
            "doc_id": i,
            "gold": 0,
            "loglikelihoods": [-1.0 - i, -2.0],
            "acc": float(i < 3 * plw),
            "item_hash": f"h{i}",
        }  # fmt: skip
        for i in range(3)
    ]
    write_jsonl(cell_dir / "eval" / "arc_easy.jsonl", lines)
    return result


def run(study, runner=with_items):
    sweep_support.CALLS.clear()
    run_sweep(study, executor=LocalExecutor(runner, isolate=False))
    return list(sweep_support.CALLS)


def test_the_driver_records_each_cells_items_with_the_factor_columns(make_study):
    study = make_study(factors={"plw": [0.0, 1.0], "model": ["tiny"], "dataset": ["toy"]})
    run(study)
    items = ResultStore(study.directory() / "results.sqlite").items()
    assert list(items.columns) == FACTORS + ITEMS
    assert len(items) == 2 * 3 * 2  # cells x items x (acc, margin)
    one = items[(items.plw == 1.0) & (items.metric == "acc")]
    assert list(one["item"]) == ["0", "1", "2"] and list(one.value) == [1.0, 1.0, 1.0]
    assert list(one.item_hash) == ["h0", "h1", "h2"] and set(one.model) == {"tiny"}
    margin = items[(items.plw == 0.0) & (items.metric == "margin")]
    assert list(margin.value) == [1.0, 0.0, -1.0]  # LL(gold) - LL(wrong): -1 - -2, -2 - -2, -3 - -2
    bare = ResultStore(study.directory() / "results.sqlite").items(factors=False)
    assert list(bare.columns) == ["cell", *ITEMS] and len(bare) == len(items)


def test_extra_factor_columns_come_before_task(make_study):
    study = make_study(factors={"plw": [0.0], "model": ["tiny"], "dataset": ["toy"],
                                "train.learning_rate": [0.001, 0.01]})  # fmt: skip
    run(study)
    items = ResultStore(study.directory() / "results.sqlite").items()
    assert list(items.columns) == [*FACTORS, "train.learning_rate", *ITEMS]
    assert set(items["train.learning_rate"]) == {0.001, 0.01}


def test_an_old_store_without_the_items_table_opens_and_gains_it(make_study):
    study = make_study()
    run(study)
    path = study.directory() / "results.sqlite"
    before = ResultStore(path).results()
    con = sqlite3.connect(path)
    con.execute("DROP TABLE items")
    con.commit()
    con.close()
    assert damage(path) is None  # a store from before per-item rows is not damaged
    store = ResultStore(path)
    assert store.recovered is None and store.items().empty
    pd.testing.assert_frame_equal(store.results(), before)


def test_a_rebuild_refills_the_items_and_a_rerun_keeps_them(make_study):
    study = make_study()
    run(study)
    path = study.directory() / "results.sqlite"
    reference = ResultStore(path).items()
    path.write_bytes(b"SQLite format 3\0" + b"\xff" * 500)
    store = open_store(study.directory())
    assert store.recovered is not None
    pd.testing.assert_frame_equal(store.items(), reference)
    assert run(study) == []  # nothing reran, and the start-up sync kept the items
    pd.testing.assert_frame_equal(ResultStore(path).items(), reference)


def test_an_imported_cells_items_file_is_read_when_it_has_no_eval_dir(make_study, tmp_path):
    study = make_study(factors={"plw": [0.0], "model": ["tiny"], "dataset": ["toy"]})
    run(study, sweep_support.ok)  # a cell without eval/
    cell_dir = next((study.directory() / "cells").iterdir())
    frame = pd.DataFrame({"cell": [cell_dir.name] * 2, "task": ["piqa"] * 2, "item": ["007", "8"],
                          "metric": ["acc"] * 2, "value": [1.0, None], "item_hash": [None, "x"]})  # fmt: skip
    write_cell_items(cell_dir, frame)
    assert (cell_dir / ITEMS_FILE).is_file()
    store = ResultStore(tmp_path / "fresh.sqlite")
    assert rebuild_from_cells(store, study.directory()) == 1
    items = store.items(factors=False)
    assert list(items["item"]) == ["007", "8"] and items.value.isna().tolist() == [False, True]
    assert items.item_hash.tolist() == [None, "x"]


def test_a_failed_rerun_removes_the_cells_items(make_study):
    study = make_study(factors={"plw": [0.5], "model": ["tiny"], "dataset": ["toy"]})
    run(study)
    store = ResultStore(study.directory() / "results.sqlite")
    cell = store.items().cell.iloc[0]
    store.record_failure("fake", cell, "boom")
    assert store.items().empty
