"""The study's results store: `STUDY_DIR/results.sqlite`, written only by the sweep driver.

Five tables (plw.experiment.store_schema): results, runs, layers, cell_factors and items.

The cells' result.json files are the source of truth; the driver re-syncs the store from them on
every start, so a driver killed between a cell's result and its database insert loses nothing.
Each cell's rows are replaced in one transaction, so a kill never leaves half a cell in the table.
A damaged database (truncated, overwritten, tables missing) is moved aside when opened and the
store starts empty; the driver, and `open_store` (plw.experiment.store_rebuild), then refill it from
the cells' result.json files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from plw.errors import PLWError, WriteError
from plw.experiment.factors import PREFIX, column_values, value_json
from plw.experiment.store_items import ITEMS_SCHEMA, put_items, read_items, with_factors
from plw.experiment.store_schema import RUN_COLUMNS, SCHEMA, damage, move_aside
from plw.files import write_atomic, write_text_atomic

FORMATS = ("csv", "parquet", "json")
_ORDER = "model, dataset, regularizer, seed, plw, task, metric"
log = logging.getLogger(__name__)


class ResultStore:
    """Read and write a study's SQLite store.

    Args:
        path: the database file; created with its tables on first use. A damaged file is moved
            aside (`recovered` then says where) and an empty store created in its place.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.recovered: Path | None = None
        problem = damage(self.path)
        if problem:
            self.recovered = move_aside(self.path)
            log.warning("%s: %s; moved it to %s and rebuilding it from the cells' result.json files",
                        self.path, problem, self.recovered.name)  # fmt: skip
        with self._connect() as con:
            con.executescript(SCHEMA + ITEMS_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30)
        try:
            with con:  # one transaction: committed on success, rolled back on error
                yield con
        except sqlite3.OperationalError as err:
            if getattr(err, "sqlite_errorcode", None) != sqlite3.SQLITE_FULL:
                raise
            # Rolled back: the store keeps every earlier cell; the driver refills it from the cells'
            # result.json files on its next start.
            raise WriteError(self.path, f"No space left on device ({err})", disk_full=True) from err
        finally:
            con.close()

    def record(
        self, study: str, factors: dict[str, Any], cell: str, result: dict[str, Any],
        items: list[dict[str, Any]] | None = None,
    ) -> None:  # fmt: skip
        """Replace a finished cell's rows and run record with those of `result` (a result.json), and
        its per-item rows with `items` ({task, item, metric, value, item_hash}; see `cell_items`)."""
        key = (study, cell, factors["model"], factors["dataset"], float(factors["plw"]), int(factors["seed"]),
               factors["regularizer"])  # fmt: skip
        rows = [
            (*key, r["task"], r["metric"], _float(r.get("value")), _float(r.get("stderr")))
            for r in result["rows"]
        ]
        layers = [(*key, r["layer"], r["metric"], _float(r.get("value"))) for r in result.get("layers", [])]
        extra = [(cell, k, value_json(v)) for k, v in factors.items() if k.startswith(PREFIX)]
        with self._connect() as con:
            self._delete(con, cell)
            con.executemany(f"INSERT OR REPLACE INTO results VALUES ({', '.join('?' * 11)})", rows)
            con.executemany(f"INSERT OR REPLACE INTO layers VALUES ({', '.join('?' * 10)})", layers)
            con.executemany("INSERT OR REPLACE INTO cell_factors VALUES (?, ?, ?)", extra)
            put_items(con, cell, items or [])
            self._put_run(con, study, cell, "done", result.get("run", {}), None)

    @staticmethod
    def _delete(con, cell: str, runs: bool = False) -> None:
        tables = ("results", "layers", "cell_factors", "items") + (("runs",) if runs else ())
        for table in tables:
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
        """The tidy results table (docs/results-schema.md), in a stable order; one column per extra
        factor (`train.<path>`) after `regularizer` when the study has any."""
        with self._connect() as con:
            frame = pd.read_sql_query(f"SELECT * FROM results ORDER BY {_ORDER}", con)
        frame = frame.astype({"plw": float, "value": float, "stderr": float, "seed": "int64"})
        return self._with_factors(frame, "task")

    def layers(self) -> pd.DataFrame:
        """Per-layer weight distances, one row per cell x layer x metric (extra factor columns too)."""
        with self._connect() as con:
            frame = pd.read_sql_query(f"SELECT * FROM layers ORDER BY {_ORDER.replace('task', 'layer')}", con)
        return self._with_factors(frame.astype({"plw": float, "value": float, "seed": "int64"}), "layer")

    def _with_factors(self, frame: pd.DataFrame, before: str) -> pd.DataFrame:
        """Add one column per extra factor, inserted before `before`, and order rows by them too."""
        with self._connect() as con:
            rows = con.execute("SELECT cell, factor, value FROM cell_factors ORDER BY factor").fetchall()
        if not rows:
            return frame
        names = sorted({factor for _, factor, _ in rows})
        for name in names:
            cells = [(cell, json.loads(value)) for cell, factor, value in rows if factor == name]
            mapping = dict(zip([c for c, _ in cells], column_values([v for _, v in cells]), strict=True))
            frame.insert(frame.columns.get_loc(before), name, frame["cell"].map(mapping))
        keys = _ORDER.replace(", ", ",").split(",")
        order = [k if k in frame.columns else before for k in [*keys[:3], *names, *keys[3:]]]
        return frame.sort_values(order, kind="stable", na_position="last").reset_index(drop=True)

    def items(self, factors: bool = True) -> pd.DataFrame:
        """Per-item scores: the factor columns of `results()` then task, item, metric, value,
        item_hash; with `factors=False` only ITEM_COLUMNS (cell, task, ..., item_hash: the export)."""
        with self._connect() as con:
            items = read_items(con)
        return with_factors(items, self.results()) if factors else items

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


def export(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    """Write a table as csv, parquet or json (a list of records), atomically."""
    if fmt not in FORMATS:
        raise PLWError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "csv":
        write_atomic(path, lambda tmp: frame.to_csv(tmp, index=False))
    elif fmt == "parquet":
        write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))
    else:
        write_text_atomic(path, frame.to_json(orient="records", indent=2))


def render(frame: pd.DataFrame, fmt: str) -> str:
    """A table as csv or json text (for stdout)."""
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "json":
        return frame.to_json(orient="records", indent=2)
    raise PLWError(f"format {fmt!r} cannot be printed; give an output file with -o")
