"""Per-item files: export round trip, factor join, one-line errors, and the item-set checks."""

from __future__ import annotations

import pandas as pd
import pytest

from plw.analysis.items import (
    ITEM_COLUMNS,
    ItemSetError,
    check_item_sets,
    load_items,
    normalize_items,
    require_same_items,
)
from plw.analysis.results import normalize_results
from plw.errors import PLWError
from plw.experiment.store_items import export_items

CELLS = ["plw=0__model=m__dataset=d__seed=0__reg=none", "plw=1__model=m__dataset=d__seed=0__reg=none"]


def results_table(tasks=("arc_easy",)) -> pd.DataFrame:
    rows = [
        {
            "study": "s",
            "cell": cell,
            "model": "m",
            "dataset": "d",
            "plw": plw,
            "seed": 0,
            "regularizer": "none",
            "task": task,
            "metric": "acc_norm",
            "value": 0.5,
            "stderr": 0.1,
        }  # fmt: skip
        for cell, plw in zip(CELLS, (0.0, 1.0), strict=True)
        for task in tasks
    ]
    return normalize_results(pd.DataFrame(rows), "results.csv")


def items_table(cells=CELLS, items=("0", "1", "2"), hashes=None) -> pd.DataFrame:
    rows = [
        {
            "cell": cell,
            "task": "arc_easy",
            "item": item,
            "metric": metric,
            "value": 1.0,
            "item_hash": (hashes or {}).get((cell, item), f"h{item}"),
        }  # fmt: skip
        for cell in cells
        for item in items
        for metric in ("acc_norm", "margin")
    ]
    return pd.DataFrame(rows, columns=list(ITEM_COLUMNS))


@pytest.mark.parametrize("name", ["items.csv.gz", "items.csv", "items.parquet"])
def test_export_round_trip_joins_the_factor_columns(tmp_path, name):
    raw = items_table(items=("007", "8"))
    raw.loc[1, "value"] = None
    raw.loc[0, "item_hash"] = None
    export_items(raw, tmp_path / name)
    items = load_items(tmp_path / name, results_table())
    assert list(items.columns) == ["study", "cell", "model", "dataset", "plw", "seed", "regularizer",
                                   *ITEM_COLUMNS[1:]]  # fmt: skip
    assert items["item"].tolist()[:2] == ["007", "007"]  # ids stay text
    assert items.value.isna().tolist()[:2] == [False, True] and items.item_hash.iloc[0] is None
    assert items.plw.tolist() == [0.0] * 4 + [1.0] * 4
    pd.testing.assert_frame_equal(items[list(ITEM_COLUMNS)], normalize_items(raw))


def test_gzip_export_is_byte_for_byte_reproducible(tmp_path):
    export_items(items_table(), tmp_path / "a.csv.gz")
    export_items(items_table(), tmp_path / "b.csv.gz")
    assert (tmp_path / "a.csv.gz").read_bytes() == (tmp_path / "b.csv.gz").read_bytes()


def test_load_items_takes_the_results_path_too(tmp_path):
    results_table().to_csv(tmp_path / "results.csv", index=False)
    export_items(items_table(), tmp_path / "items.csv")
    assert len(load_items(tmp_path / "items.csv", tmp_path / "results.csv")) == 12


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.drop(columns="metric"), r"items.csv: missing column\(s\) 'metric'"),
        (
            lambda f: f.assign(value=["1"] * 3 + ["high"] + ["0"] * 8),
            r"items.csv: column 'value' has a non-numeric value 'high' on row 4",
        ),
        (
            lambda f: f.assign(cell="plw=0.5__other"),
            r"items.csv: cell 'plw=0.5__other' is not in the results table results.csv",
        ),
    ],
)
def test_bad_item_files_are_one_line_errors(tmp_path, edit, message):
    edit(items_table()).to_csv(tmp_path / "items.csv", index=False)
    with pytest.raises(PLWError, match=message) as err:
        load_items(tmp_path / "items.csv", results_table())
    assert "\n" not in str(err.value)


def test_unreadable_and_unsupported_files(tmp_path):
    (tmp_path / "items.csv.gz").write_bytes(b"not gzip")
    with pytest.raises(PLWError, match="items.csv.gz: cannot read the table"):
        load_items(tmp_path / "items.csv.gz", results_table())
    (tmp_path / "items.xlsx").write_text("x")
    with pytest.raises(PLWError, match="unsupported item file format"):
        load_items(tmp_path / "items.xlsx", results_table())
    with pytest.raises(PLWError, match="no such file"):
        load_items(tmp_path / "gone.csv", results_table())


def test_identical_item_sets_have_no_problems():
    items = normalize_items(items_table(), results_table())
    assert check_item_sets(items, results_table()) == []
    require_same_items(items)


def test_a_cell_with_other_items_is_named_with_its_benchmark():
    three = items_table(cells=CELLS)
    odd = items_table(cells=["plw=0.5__model=m__dataset=d__seed=0__reg=none"], items=("0", "1", "9"))
    results = pd.concat([results_table(), results_table().assign(cell=odd.cell.iloc[0], plw=0.5)])
    items = normalize_items(pd.concat([three, odd]), results)
    assert check_item_sets(items) == [
        "cell plw=0.5__model=m__dataset=d__seed=0__reg=none, benchmark arc_easy (dataset d): 3 items, other "
        "cells 3; has item '9' (1 extra, 1 lacking)"
    ]
    with pytest.raises(ItemSetError, match="plw=0.5.*benchmark arc_easy"):
        require_same_items(items)


def test_another_item_hash_for_the_same_item_is_a_different_set():
    items = normalize_items(items_table(hashes={(CELLS[1], "2"): "changed"}), results_table())
    (problem,) = check_item_sets(items)
    assert problem.startswith(
        f"cell {CELLS[1]}, benchmark arc_easy (dataset d): item '2' has another item_hash"
    )


def test_aggregate_results_without_item_rows_are_named():
    results = results_table(tasks=("arc_easy", "piqa", "wmt16-de-en"))
    items = items_table()
    piqa = items_table(cells=CELLS[:1]).assign(task="piqa")
    problems = check_item_sets(normalize_items(pd.concat([items, piqa]), results), results)
    # wmt has no per-item rows in any cell (a corpus-level score): not a problem.
    assert problems == [
        f"cell {CELLS[1]}, benchmark piqa (dataset d): aggregate results but no per-item rows"
    ]


def test_study_items_is_none_without_a_store_or_items(tmp_path):
    from plw.experiment.store import ResultStore
    from plw.experiment.store_rebuild import study_items

    assert study_items(tmp_path) is None

    ResultStore(tmp_path / "results.sqlite")
    assert study_items(tmp_path) is None
