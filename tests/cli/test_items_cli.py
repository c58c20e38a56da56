"""`plw results --items` and `plw sweep --from-results/--from-items`: a study resumed from committed
exports runs only its missing cells, and its store then holds the imported results and items."""

from __future__ import annotations

import logging

import pandas as pd
import pytest
from support import assert_one_line_error, write_jsonl, write_study

from plw.experiment.celldir import RESULT, read_json
from plw.experiment.store import ResultStore
from plw.experiment.store_rebuild import open_store

CALLS: list[str] = []


def cell_with_items(spec, cell_dir) -> dict:
    """Trains nothing: one ARC score and an eval/ directory of two items, both depending on the PLW."""
    CALLS.append(spec.id)
    plw = spec.factors["plw"]
    (cell_dir / "eval").mkdir()
    lines = [{"doc_id": i, "gold": 0, "loglikelihoods": [-1.0, -1.0 - plw - i], "acc": 1.0} for i in range(2)]
    write_jsonl(cell_dir / "eval" / "arc_easy.jsonl", lines)
    return {"rows": [{"task": "arc_easy", "metric": "acc", "value": 0.5 + 0.1 * plw, "stderr": 0.01}]}


@pytest.fixture
def cells(in_process):
    CALLS.clear()
    in_process(cell_with_items)
    return CALLS


@pytest.fixture
def exported(plw_cli, tmp_path, cells):
    """A finished two-cell study (PLW 0 and 1) and its exports: (study file, results.csv, items.csv.gz)."""
    study = write_study(tmp_path)
    assert plw_cli("sweep", study)[0] == 0
    results, items = tmp_path / "results.csv", tmp_path / "items.csv.gz"
    assert plw_cli("results", tmp_path / "study", "-o", results)[0] == 0
    code, _, err = plw_cli("results", tmp_path / "study", "--items", "-o", items)
    # 2 cells x 2 items x (acc, margin); rich may wrap the line
    assert code == 0 and err.split() == ["8", "rows", "->", str(items)], err
    cells.clear()
    return study, results, items


def cell_id(plw: str) -> str:
    return f"plw={plw}__model=tiny__dataset=toy__seed=0__reg=none"


def test_a_fresh_study_imports_the_exports_and_runs_only_the_missing_cell(plw_cli, tmp_path, exported, cells):
    study, results, items = exported
    fresh = tmp_path / "fresh"
    args = [
        f"output_dir={fresh}",
        "factors.plw=[0.0,0.5,1.0]",
        "--from-results",
        results,
        "--from-items",
        items,
    ]
    code, out, err = plw_cli("sweep", study, *args)
    assert code == 0 and "3/3 cells done" in out, err
    assert cells == [cell_id("0.5")]
    assert read_json(fresh / "cells" / cell_id("1") / RESULT)["run"]["imported_from"] == str(results)
    assert not (fresh / "cells" / cell_id("1") / "eval").exists()
    old, new = ResultStore(tmp_path / "study" / "results.sqlite"), ResultStore(fresh / "results.sqlite")
    imported = new.results()[lambda f: f.cell != cell_id("0.5")].reset_index(drop=True)
    pd.testing.assert_frame_equal(imported, old.results())
    new_items = new.items(factors=False)
    assert set(new_items.cell) == {cell_id("0"), cell_id("0.5"), cell_id("1")}
    kept = new_items[new_items.cell != cell_id("0.5")].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, old.items(factors=False))
    # Rerun: nothing runs; a lost store is refilled from the imported cells' files, items included.
    assert plw_cli("sweep", study, f"output_dir={fresh}", "factors.plw=[0.0,0.5,1.0]")[0] == 0 and cells == [
        cell_id("0.5")
    ]
    reference = new.items()
    (fresh / "results.sqlite").write_bytes(b"garbage" * 100)
    pd.testing.assert_frame_equal(open_store(fresh).items(), reference)


def test_rows_of_cells_outside_the_study_are_noted_and_done_cells_kept(
    plw_cli, tmp_path, exported, cells, caplog
):
    study, results, _ = exported
    table = pd.read_csv(results)
    table["value"] = 0.0  # would show if a locally done cell were overwritten
    table.to_csv(results, index=False)
    caplog.set_level(logging.INFO)
    code, _, err = plw_cli("sweep", study, "factors.plw=[0.0]", "--from-results", results)
    assert code == 0 and cells == [], err
    assert f"{results}: 1 cell(s) not in this study ignored, e.g. {cell_id('1')}" in caplog.text
    values = ResultStore(tmp_path / "study" / "results.sqlite").results().value
    assert values.tolist() == [0.5]  # done locally: not overwritten


def test_dry_run_says_how_many_cells_would_be_imported(plw_cli, tmp_path, exported, cells):
    study, results, _ = exported
    code, out, _ = plw_cli(
        "sweep", study, f"output_dir={tmp_path / 'fresh'}", "--from-results", results, "--dry-run"
    )
    assert code == 0 and f"2 cell(s) would be imported from {results}" in out
    assert not (tmp_path / "fresh").exists() and cells == []


def test_unreadable_exports_are_one_line_errors(plw_cli, tmp_path, exported, cells):
    study, results, _ = exported
    fresh = f"output_dir={tmp_path / 'fresh'}"
    code, _, err = plw_cli("sweep", study, fresh, "--from-results", tmp_path / "gone.csv")
    assert_one_line_error(code, err, "gone.csv: no such file or directory")
    (tmp_path / "bad.csv.gz").write_bytes(b"not gzip")
    code, _, err = plw_cli(
        "sweep", study, fresh, "--from-results", results, "--from-items", tmp_path / "bad.csv.gz"
    )
    assert_one_line_error(code, err, "bad.csv.gz: cannot read the table")
    code, _, err = plw_cli("sweep", study, fresh, "--from-items", tmp_path / "bad.csv.gz")
    assert_one_line_error(code, err, "--from-items: needs --from-results")
    assert not (tmp_path / "fresh").exists() and cells == []


def test_items_export_format_and_stdout(plw_cli, tmp_path, exported):
    code, _, err = plw_cli("results", tmp_path / "study", "--items", "-o", tmp_path / "items.json")
    assert_one_line_error(code, err, "name the item file .csv, .csv.gz or .parquet")
    code, out, _ = plw_cli("results", tmp_path / "study", "--items")
    assert code == 0 and out.splitlines()[0] == "cell,task,item,metric,value,item_hash"
    assert len(out.splitlines()) == 9
