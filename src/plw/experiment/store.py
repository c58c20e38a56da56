"""The study's results store: `STUDY_DIR/results.sqlite`, written only by the sweep driver.

Three tables:
    results  one row per cell x task x metric, the columns of docs/results-schema.md
    runs     one row per cell: status, versions, git revision, wall time, tokens per second, error
    layers   per-layer weight distances: the factor columns, layer, metric, value

The cells' result.json files are the source of truth; the driver re-syncs the store from them on
every start, so a driver killed between a cell's result and its database insert loses nothing.
Each cell's rows are replaced in one transaction, so a kill never leaves half a cell in the table.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from plw.analysis.results import COLUMNS
from plw.errors import PLWError

# The tidy results table of docs/results-schema.md, defined once in the analysis that reads it.
RESULT_COLUMNS = COLUMNS
RUN_COLUMNS = (
    "study", "cell", "status", "plw_version", "torch_version", "transformers_version", "python_version",
    "git_revision", "host", "started", "finished", "wall_time_s", "train_tokens", "tokens_per_second",
    "error",
)  # fmt: skip
TIMING_COLUMNS = ("started", "finished", "wall_time_s", "tokens_per_second")
FORMATS = ("csv", "parquet", "json")
_SCHEMA = """
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
"""
_ORDER = "model, dataset, regularizer, seed, plw, task, metric"


class ResultStore:
    """Read and write a study's SQLite store.

    Args:
        path: the database file; created with its tables on first use.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        with self._connect() as con:
            con.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30)
        try:
            with con:  # one transaction: committed on success, rolled back on error
                yield con
        finally:
            con.close()

    def record(self, study: str, factors: dict[str, Any], cell: str, result: dict[str, Any]) -> None:
        """Replace a finished cell's rows and run record with those of `result` (a result.json)."""
        key = (study, cell, factors["model"], factors["dataset"], float(factors["plw"]), int(factors["seed"]),
               factors["regularizer"])  # fmt: skip
        rows = [
            (*key, r["task"], r["metric"], _float(r.get("value")), _float(r.get("stderr")))
            for r in result["rows"]
        ]
        layers = [(*key, r["layer"], r["metric"], _float(r.get("value"))) for r in result.get("layers", [])]
        with self._connect() as con:
            self._delete(con, cell)
            con.executemany(f"INSERT OR REPLACE INTO results VALUES ({', '.join('?' * 11)})", rows)
            con.executemany(f"INSERT OR REPLACE INTO layers VALUES ({', '.join('?' * 10)})", layers)
            self._put_run(con, study, cell, "done", result.get("run", {}), None)

    @staticmethod
    def _delete(con, cell: str, runs: bool = False) -> None:
        for table in ("results", "layers", "runs") if runs else ("results", "layers"):
            con.execute(f"DELETE FROM {table} WHERE cell = ?", (cell,))

    def record_failure(self, study: str, cell: str, error: str, run: dict[str, Any] | None = None) -> None:
        """Record a failed cell (its metric rows, if any, are removed)."""
        with self._connect() as con:
            self._delete(con, cell)
            self._put_run(con, study, cell, "failed", run or {}, error)

    @staticmethod
    def _put_run(con, study: str, cell: str, status: str, run: dict[str, Any], error: str | None) -> None:
        values = {**{k: run.get(k) for k in RUN_COLUMNS}, "study": study, "cell": cell, "status": status}
        values["error"] = error
        row = [values[k] for k in RUN_COLUMNS] + [json.dumps(run, default=str)]
        con.execute(f"INSERT OR REPLACE INTO runs VALUES ({', '.join('?' * len(row))})", row)

    def keep_only(self, cells: set[str]) -> None:
        """Drop rows of cells no longer in the study (their directories stay on disk)."""
        stored = self.cells()
        with self._connect() as con:
            for cell in stored - cells:
                self._delete(con, cell, runs=True)

    def cells(self, status: str | None = None) -> set[str]:
        """Ids of cells with a run record (optionally only those with `status`)."""
        query, args = "SELECT cell FROM runs", ()
        if status is not None:
            query, args = query + " WHERE status = ?", (status,)
        with self._connect() as con:
            return {row[0] for row in con.execute(query, args)}

    def results(self) -> pd.DataFrame:
        """The tidy results table (docs/results-schema.md), in a stable order."""
        with self._connect() as con:
            frame = pd.read_sql_query(f"SELECT * FROM results ORDER BY {_ORDER}", con)
        return frame.astype({"plw": float, "value": float, "stderr": float, "seed": "int64"})

    def layers(self) -> pd.DataFrame:
        """Per-layer weight distances, one row per cell x layer x metric."""
        with self._connect() as con:
            frame = pd.read_sql_query(f"SELECT * FROM layers ORDER BY {_ORDER.replace('task', 'layer')}", con)
        return frame.astype({"plw": float, "value": float, "seed": "int64"})

    def runs(self) -> pd.DataFrame:
        """One row per cell of run metadata."""
        columns = ", ".join(RUN_COLUMNS)
        with self._connect() as con:
            return pd.read_sql_query(f"SELECT {columns} FROM runs ORDER BY cell", con)


def _float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def open_store(study_dir: Path) -> ResultStore:
    """The store of an existing study directory.

    Raises:
        PLWError: the directory has no results.sqlite yet.
    """
    path = Path(study_dir) / "results.sqlite"
    if not path.is_file():
        raise PLWError(f"{study_dir}: no results.sqlite (run `plw sweep` on the study first)")
    return ResultStore(path)


def export(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    """Write a table as csv, parquet or json (a list of records), atomically."""
    if fmt not in FORMATS:
        raise PLWError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if fmt == "csv":
        frame.to_csv(tmp, index=False)
    elif fmt == "parquet":
        frame.to_parquet(tmp, index=False)
    else:
        tmp.write_text(frame.to_json(orient="records", indent=2), encoding="utf-8")
    os.replace(tmp, path)


def render(frame: pd.DataFrame, fmt: str) -> str:
    """A table as csv or json text (for stdout)."""
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "json":
        return frame.to_json(orient="records", indent=2)
    raise PLWError(f"format {fmt!r} cannot be printed; give an output file with -o")
