"""The store's per-item table and where a cell's per-item rows come from.

    items   one row per cell x task x item x metric: cell, task, item, metric, value, item_hash

A cell's rows come from its `eval/<task>.jsonl` files (plw.evaluation.items), or, for a cell
imported from another study's exports (plw.experiment.imported), from `cells/<id>/items.csv.gz`; so
`rebuild_from_cells` refills the table from files, like the aggregate results. The table is created
when missing, so stores written before it existed open unchanged.
"""

from __future__ import annotations

import gzip
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd

from plw.analysis.items import ITEM_COLUMNS, SUFFIXES, normalize_items, read_item_file
from plw.errors import PLWError
from plw.files import write_atomic, write_bytes_atomic

ITEMS_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    cell TEXT, task TEXT, item TEXT, metric TEXT, value REAL, item_hash TEXT,
    PRIMARY KEY (cell, task, item, metric));
"""
ITEMS_FILE = "items.csv.gz"
EVAL = "eval"
# Numeric ids in numeric order (CAST of a non-number is 0; the text then orders those).
_ORDER = "cell, task, CAST(item AS INTEGER), item, metric"


def cell_items(cell_dir: Path) -> list[dict[str, Any]]:
    """A done cell's per-item rows {task, item, metric, value, item_hash}: from eval/*.jsonl, else
    from items.csv.gz (an imported cell), else none.

    Raises:
        PLWError: a per-item file is garbled (naming file:line, or the file).
    """
    from plw.evaluation.items import item_rows

    cell_dir = Path(cell_dir)
    if any((cell_dir / EVAL).glob("*.jsonl")):
        return item_rows(cell_dir / EVAL)
    path = cell_dir / ITEMS_FILE
    if not path.is_file():
        return []
    frame = normalize_items(read_item_file(path), None, path)
    return frame.drop(columns="cell").to_dict("records")


def write_cell_items(cell_dir: Path, frame: pd.DataFrame) -> None:
    """cells/<id>/items.csv.gz from ITEM_COLUMNS rows, atomically (what `cell_items` reads back)."""
    export_items(frame[list(ITEM_COLUMNS)], Path(cell_dir) / ITEMS_FILE)


def put_items(con: sqlite3.Connection, cell: str, rows: list[dict[str, Any]]) -> None:
    """Insert a cell's rows (the caller has deleted its old ones, in the same transaction)."""
    values = [
        (cell, r["task"], str(r["item"]), r["metric"], _float(r["value"]), r.get("item_hash")) for r in rows
    ]
    con.executemany("INSERT OR REPLACE INTO items VALUES (?, ?, ?, ?, ?, ?)", values)


def _float(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def read_items(con: sqlite3.Connection) -> pd.DataFrame:
    """The items table, ITEM_COLUMNS, ordered by cell, task, item, metric."""
    frame = pd.read_sql_query(f"SELECT {', '.join(ITEM_COLUMNS)} FROM items ORDER BY {_ORDER}", con)
    frame["value"] = frame["value"].astype(float)
    frame["item_hash"] = frame["item_hash"].astype(object).where(frame["item_hash"].notna(), None)
    return frame


def with_factors(items: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """`items` with each cell's factor columns in front, rows in the results table's cell order."""
    from plw.analysis.items import cell_factors

    factors = cell_factors(results)
    rank = {cell: i for i, cell in enumerate(factors["cell"])}
    out = items.merge(factors, on="cell", how="left")
    out = out.iloc[out["cell"].map(rank).fillna(len(rank)).argsort(kind="stable")]
    return out[[*factors.columns, *ITEM_COLUMNS[1:]]].reset_index(drop=True)


def export_items(frame: pd.DataFrame, path: Path) -> None:
    """Write an item table as .csv, .csv.gz (gzip, reproducible bytes) or .parquet, atomically."""
    name = Path(path).name.lower()
    if name.endswith(".parquet"):
        write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))
    elif name.endswith(".csv"):
        write_atomic(path, lambda tmp: frame.to_csv(tmp, index=False))
    elif name.endswith(".csv.gz"):
        # No file name and mtime 0 in the header: the same table gives the same bytes, so committed
        # exports compare equal (pandas would record the temporary file's name).
        write_bytes_atomic(path, gzip.compress(frame.to_csv(index=False).encode("utf-8"), mtime=0))
    else:
        raise PLWError(f"{path}: unsupported item file format; use {', '.join(SUFFIXES)}")
