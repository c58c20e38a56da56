"""The tables of a study's results store (results.sqlite), and the check that a file holds them.

Five tables:
    results       one row per cell x task x metric, the columns of docs/results-schema.md
    runs          one row per cell: status, versions, git revision, wall time, tokens per second, error
    layers        per-layer weight distances: the factor columns, layer, metric, value
    cell_factors  one row per cell x extra factor (`train.<path>`, value as JSON); `results()` and
                  `layers()` turn it into one column per extra factor. Kept apart so stores written
                  before extra factors existed open unchanged (the table is created when missing).
    items         per-item scores, one row per cell x task x item x metric (plw.experiment.store_items;
                  created when missing too); `items()` joins the factor columns.

`damage` says what is wrong with a database file that does not hold the tables (or is no database);
plw.experiment.store.ResultStore then moves it aside (`move_aside`) and starts an empty store. The
columns of the results table are the analysis's (plw.analysis.results), which reads it.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

RUN_COLUMNS = (
    "study", "cell", "status", "plw_version", "torch_version", "transformers_version", "python_version",
    "git_revision", "host", "started", "finished", "wall_time_s", "train_tokens", "tokens_per_second",
    "error",
)  # fmt: skip
TIMING_COLUMNS = ("started", "finished", "wall_time_s", "tokens_per_second")
SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    study TEXT, cell TEXT, model TEXT, dataset TEXT, plw REAL, seed INTEGER, regularizer TEXT,
    task TEXT, metric TEXT, value REAL, stderr REAL, PRIMARY KEY (cell, task, metric));
CREATE TABLE IF NOT EXISTS layers (
    study TEXT, cell TEXT, model TEXT, dataset TEXT, plw REAL, seed INTEGER, regularizer TEXT,
    layer TEXT, metric TEXT, value REAL, PRIMARY KEY (cell, layer, metric));
CREATE TABLE IF NOT EXISTS runs (
    study TEXT, cell TEXT PRIMARY KEY, status TEXT, plw_version TEXT, torch_version TEXT,
    transformers_version TEXT, python_version TEXT, git_revision TEXT, host TEXT, started REAL,
    finished REAL, wall_time_s REAL, train_tokens REAL, tokens_per_second REAL, error TEXT, run_json TEXT);
CREATE TABLE IF NOT EXISTS cell_factors (cell TEXT, factor TEXT, value TEXT, PRIMARY KEY (cell, factor));
"""
_TABLES = {"results", "layers", "runs"}


def damage(path: Path) -> str | None:
    """What is wrong with an existing database file (unreadable, failed check, tables missing), or None."""
    if not path.exists():
        return None
    try:
        con = sqlite3.connect(path, timeout=30)
        try:
            check = [row[0] for row in con.execute("PRAGMA quick_check")]
            tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            con.close()
    except sqlite3.DatabaseError as err:  # "file is not a database", "disk image is malformed"
        return f"damaged database ({err})"
    if check != ["ok"]:
        return f"damaged database (quick_check: {check[0]})"
    missing = sorted(_TABLES - tables)
    return f"damaged database (missing table(s) {', '.join(missing)})" if missing else None


def move_aside(path: Path) -> Path:
    """Rename a damaged database to <name>.corrupt-<timestamp>, with its journal files; return it."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    # A leftover rollback journal must go too: SQLite would replay it into the new database.
    for suffix in ("", "-journal", "-wal", "-shm"):
        source = path.with_name(path.name + suffix)
        if source.exists():
            source.rename(aside.with_name(aside.name + suffix))
    return aside
