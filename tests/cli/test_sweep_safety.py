"""`plw sweep` / `plw results`: the study directory and -o checked first, a damaged store rebuilt from
the cells' result.json files, exports that fail cleanly, and dry-run compute that says when unknown."""

from __future__ import annotations

import errno
import logging
import os

import pandas as pd
import pytest
from support import assert_one_line_error, fake_cell, leftovers, write_study

from plw.experiment.store import ResultStore


@pytest.fixture
def fake_cells(in_process):
    """`plw sweep` runs cells in-process with a runner that trains nothing."""
    in_process(fake_cell)


@pytest.fixture
def swept(plw_cli, tmp_path, fake_cells):
    """(study dir, results table) of a finished two-cell study."""
    code, _, err = plw_cli("sweep", write_study(tmp_path))
    assert code == 0, err
    study_dir = tmp_path / "study"
    return study_dir, ResultStore(study_dir / "results.sqlite").results()


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_study_directory_that_is_a_file(plw_cli, tmp_path, fake_cells, dry_run):
    taken = tmp_path / "taken"
    taken.write_text("x")
    study = write_study(tmp_path, output_dir=taken)
    code, _, err = plw_cli("sweep", study, *(["--dry-run"] if dry_run else []))
    assert_one_line_error(
        code, err, f"{study}: study directory: {taken.resolve()} is a file; give a directory"
    )
    assert taken.read_text() == "x" and not leftovers(tmp_path)


def test_results_output_that_is_a_directory(plw_cli, swept, tmp_path):
    study_dir, _ = swept
    code, _, err = plw_cli("results", study_dir, "-o", tmp_path)
    assert_one_line_error(code, err, f"-o/--output: {tmp_path} is a directory; give a file path")


def test_results_export_that_fails_midway_keeps_the_old_file(plw_cli, swept, tmp_path, monkeypatch):
    study_dir, _ = swept
    target = tmp_path / "export.csv"
    target.write_text("old\n")
    real = pd.DataFrame.to_csv

    def disk_full(self, path=None, **kw):
        if path is None:
            return real(self, path, **kw)
        with open(path, "w") as handle:
            handle.write("plw,ta")  # half a table, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", disk_full)
    code, _, err = plw_cli("results", study_dir, "-o", target)
    assert_one_line_error(code, err, f"{target}: cannot write: No space left on device")
    assert target.read_text() == "old\n" and not leftovers(tmp_path)


def damage(path, how: str) -> None:
    if how == "truncated":
        size = path.stat().st_size
        with path.open("r+b") as handle:
            handle.truncate(size // 2 + 100)  # cut mid-page, as a crash or a full disk would
    else:
        path.write_bytes(os.urandom(8192))


@pytest.mark.parametrize("how", ["truncated", "random bytes"])
def test_results_rebuilds_a_damaged_store_from_the_cells(plw_cli, swept, how, caplog):
    study_dir, table = swept
    damage(study_dir / "results.sqlite", how)
    with caplog.at_level(logging.WARNING, logger="plw.experiment.store"):
        code, out, err = plw_cli("results", study_dir)
    assert code == 0, err
    assert out.splitlines()[1:] == table.to_csv(index=False).splitlines()[1:]
    [line] = [r.getMessage() for r in caplog.records if "damaged database" in r.getMessage()]
    assert line.startswith(f"{study_dir / 'results.sqlite'}: damaged database (") and "\n" not in line
    [aside] = study_dir.glob("results.sqlite.corrupt-*")
    assert aside.name in line
    pd.testing.assert_frame_equal(ResultStore(study_dir / "results.sqlite").results(), table)


@pytest.mark.parametrize("how", ["truncated", "random bytes"])
def test_sweep_rebuilds_a_damaged_store_and_carries_on(plw_cli, swept, tmp_path, how, caplog):
    study_dir, table = swept
    damage(study_dir / "results.sqlite", how)
    with caplog.at_level(logging.WARNING, logger="plw.experiment.store"):
        code, out, err = plw_cli("sweep", tmp_path / "study.yaml")
    assert code == 0, err
    assert "2/2 cells done" in out and any("damaged database" in r.getMessage() for r in caplog.records)
    pd.testing.assert_frame_equal(ResultStore(study_dir / "results.sqlite").results(), table)
    assert pd.read_csv(study_dir / "results.csv").shape == table.shape


def test_dry_run_says_why_the_compute_is_unknown(plw_cli, tmp_path):
    """A hub model that is not cached: no parameter count, so no FLOPs; never '~ 0FLOPs'."""
    code, out, err = plw_cli("sweep", write_study(tmp_path), "--dry-run")
    assert code == 0, err
    [line] = [x for x in out.splitlines() if x.startswith("total training compute")]
    assert line.startswith("total training compute unknown: model example-org/tiny-model is not available")
    assert "0FLOPs" not in out and line.endswith("nothing was run")
    assert not (tmp_path / "study").exists()


def test_dry_run_compute_line_with_some_cells_unknown():
    from plw.cli.sweep import compute_line
    from plw.experiment.estimate import Estimate

    known = Estimate(tokens=1e6, parameters=1000)
    unknown = Estimate(tokens=None, parameters=1000, unknown="dataset org/x is not a local file")
    assert (
        compute_line([known, known])
        == "total training compute ~ 12GFLOPs (6 x params x tokens); nothing was run"
    )
    assert compute_line([known, unknown]) == (
        "total training compute unknown for 1 of 2 cells (dataset org/x is not a local file); "
        "the others ~ 6GFLOPs (6 x params x tokens); nothing was run"
    )
