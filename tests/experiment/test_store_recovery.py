"""A damaged results.sqlite is moved aside on open and the store rebuilt from the cells' files."""

from __future__ import annotations

import sqlite3

import pandas as pd
import sweep_support
from test_driver import run, table

from plw.experiment.store import ResultStore
from plw.experiment.store_rebuild import open_store
from plw.experiment.store_schema import damage, move_aside


def test_a_healthy_store_is_left_alone(make_study):
    study = make_study()
    run(study)
    path = study.directory() / "results.sqlite"
    assert damage(path) is None and ResultStore(path).recovered is None
    assert not list(study.directory().glob("*.corrupt-*"))


def test_missing_tables_are_damage(tmp_path):
    path = tmp_path / "results.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE runs (cell TEXT)")
    con.commit()
    con.close()
    assert damage(path) == "damaged database (missing table(s) layers, results)"
    store = ResultStore(path)
    assert store.recovered.name.startswith("results.sqlite.corrupt-") and store.recovered.is_file()
    assert store.results().empty and damage(path) is None


def test_journal_files_move_with_the_database(tmp_path):
    """A leftover rollback journal beside a new database would be replayed into it by SQLite."""
    for name in ("results.sqlite", "results.sqlite-journal", "results.sqlite-wal"):
        (tmp_path / name).write_bytes(b"x")
    aside = move_aside(tmp_path / "results.sqlite")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        aside.name,
        f"{aside.name}-journal",
        f"{aside.name}-wal",
    ]


def test_open_store_rebuilds_only_the_study_cells(make_study):
    study = make_study()
    run(study)
    reference = table(study)
    sweep_support.CALLS.clear()
    (study.directory() / "results.sqlite").write_bytes(b"SQLite format 3\0" + b"\xff" * 500)
    store = open_store(study.directory())
    assert store.recovered is not None
    pd.testing.assert_frame_equal(store.results(), reference)
    assert store.cells() == {c for c in reference.cell}
    assert sweep_support.CALLS == []  # rebuilt from files: nothing reran
