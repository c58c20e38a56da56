"""Load a study's results table (docs/results-schema.md) from a study directory or a file.

The sweep writes the table as `results.csv` or `results.parquet` in the study directory; a user
may also pass any CSV / Parquet / JSON file with the same columns, edited by hand or produced
elsewhere. Only `plw`, `task`, `metric` and `value` are required; the factor columns default so a
minimal hand-made table still loads. A study's extra factors (training settings it varies) are
columns named `train.<path>` (`train.learning_rate`), placed after `regularizer`; tables without them
load as before.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from plw.errors import PLWError

DIRECTORY_FILES = ("results.csv", "results.parquet", "results.json")
"""Looked for, in this order, when `load_results` is given a directory."""

REQUIRED = ("plw", "task", "metric", "value")
FACTOR_PREFIX = "train."
"""Columns named `train.<path>` are extra factors (plw.experiment.factors)."""
DEFAULTS = {
    "study": "",
    "model": "default",
    "dataset": "default",
    "seed": 0,
    "regularizer": "none",
    "stderr": float("nan"),
}
CELL_COLUMNS = ("study", "cell", "model", "dataset", "plw", "seed", "regularizer")
"""The columns that say which cell a row belongs to; every per-cell table (results, layers, the
analysis's scores and simulated items) starts with them."""
RESULT_COLUMNS = (*CELL_COLUMNS, "task", "metric", "value", "stderr")
"""The tidy results table of docs/results-schema.md, in order (a study's extra factor columns go in
before `task`); the study store's results table (plw.experiment.store_schema) has these columns."""
COLUMNS = RESULT_COLUMNS


def resolve_results_path(path: str | Path) -> Path:
    """Find the results file: `path` itself, or the first of DIRECTORY_FILES inside a directory."""
    path = Path(path)
    if not path.exists():
        raise PLWError(f"{path}: no such file or directory")
    if path.is_file():
        return path
    for name in DIRECTORY_FILES:
        if (path / name).is_file():
            return path / name
    hint = (
        " (results.sqlite found: export it with `plw results`)" if (path / "results.sqlite").exists() else ""
    )
    raise PLWError(
        f"{path}: no results table in the directory; expected one of {', '.join(DIRECTORY_FILES)}{hint}"
    )


def _read_json(path: Path) -> pd.DataFrame:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise PLWError(f"{path}: not valid JSON ({err})") from err
    if isinstance(data, dict):
        # Accept {"rows": [...]} / {"results": [...]} wrappers as well as column-oriented dicts.
        data = data.get("rows", data.get("results", data))
    try:
        return pd.DataFrame(data)
    except ValueError as err:
        raise PLWError(f"{path}: JSON is not a table of records ({err})") from err


def _read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            # Read as text so a bad value is reported rather than silently turned into NaN.
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise PLWError(f"{path}: cannot read the table ({str(err).splitlines()[0]})") from err
    if suffix == ".json":
        return _read_json(path)
    raise PLWError(f"{path}: unsupported results format {suffix!r}; use .csv, .parquet or .json")


def _blank(series: pd.Series) -> pd.Series:
    return series.isna() | (series.astype(str).str.strip().isin(["", "nan", "NaN", "None", "null"]))


def _numeric(df: pd.DataFrame, column: str, path: Path, allow_blank: bool) -> pd.Series:
    """Parse a numeric column; a non-numeric entry is a PLWError naming its row (CSV line)."""
    raw = df[column]
    blank = _blank(raw)
    values = pd.to_numeric(raw.where(~blank), errors="coerce")
    bad = values.isna() & ~blank
    if not allow_blank:
        bad |= blank
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        shown = "" if blank.iloc[i] else f" {str(raw.iloc[i])!r}"
        raise PLWError(f"{path}: column {column!r} has a non-numeric value{shown} on row {i + 1}")
    return values.astype(float)


def _text(series: pd.Series, default: str) -> pd.Series:
    out = series.astype(object).where(~_blank(series), default)
    return out.map(lambda v: str(v).strip()).astype(object)


def factor_columns(df: pd.DataFrame) -> list[str]:
    """The extra factor columns of a results or scores table (`train.<path>`), in table order."""
    return [str(c) for c in df.columns if str(c).startswith(FACTOR_PREFIX)]


def _cell_ids(df: pd.DataFrame) -> pd.Series:
    extra = factor_columns(df)
    return df.apply(
        lambda r: (
            f"plw={r.plw:g},model={r.model},dataset={r.dataset},seed={r.seed},reg={r.regularizer}"
            + "".join(f",{c[len(FACTOR_PREFIX) :]}={r[c]}" for c in extra)
        ),
        axis=1,
    )


def _factor_column(series: pd.Series) -> pd.Series:
    """An extra factor's levels: numbers when every entry is one (CSV reads text), else text.

    Only an empty entry is missing: `null` is a level (e.g. `train.lora` null = full fine-tuning).
    """
    blank = series.isna() | series.astype(str).str.strip().eq("")
    values = pd.to_numeric(series.where(~blank), errors="coerce")
    if not (values.isna() & ~blank).any():
        return values.astype(float)
    return series.astype(object).where(~blank, None).map(lambda v: v if v is None else str(v).strip())


def require_columns(frame: pd.DataFrame, required: tuple[str, ...], source: str | Path) -> pd.DataFrame:
    """A copy of `frame` with its column names stripped (hand-made tables carry stray blanks).

    Raises:
        PLWError: a column of `required` is missing (naming `source` and the schema's document).
    """
    frame = frame.copy()
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise PLWError(
            f"{source}: missing column(s) {', '.join(map(repr, missing))}; see docs/results-schema.md"
        )
    return frame


def normalize_results(df: pd.DataFrame, path: str | Path = "<table>") -> pd.DataFrame:
    """Check and type a raw results table: required columns, numeric plw/value, defaults filled.

    Args:
        df: the table as read.
        path: where it came from, for error messages.

    Returns:
        A new frame with the schema's columns (plus any extra ones) and `attrs["source"]` set.

    Raises:
        PLWError: a required column is missing, or plw / value is not numeric, or plw is outside
            [0, 1].
    """
    path = Path(path)
    df = require_columns(df, REQUIRED, path)
    df["plw"] = _numeric(df, "plw", path, allow_blank=False)
    outside = (df["plw"] < 0) | (df["plw"] > 1)
    if outside.any():
        i = int(outside.to_numpy().nonzero()[0][0])
        raise PLWError(f"{path}: column 'plw' has {df['plw'].iloc[i]:g} on row {i + 1}, outside [0, 1]")
    df["value"] = _numeric(df, "value", path, allow_blank=True)
    for column, default in DEFAULTS.items():
        if column not in df.columns:
            df[column] = default
    df["stderr"] = pd.to_numeric(df["stderr"].where(~_blank(df["stderr"])), errors="coerce").astype(float)
    df["seed"] = _text(df["seed"], "0")
    for column in ("study", "model", "dataset", "regularizer", "task", "metric"):
        df[column] = _text(df[column], str(DEFAULTS.get(column, "")))
    for column in factor_columns(df):
        df[column] = _factor_column(df[column])
    if "cell" not in df.columns or _blank(df["cell"]).all():
        df["cell"] = _cell_ids(df) if len(df) else pd.Series(dtype=object)
    df["cell"] = _text(df["cell"], "")
    factors = factor_columns(df)
    extra = [c for c in df.columns if c not in COLUMNS and c not in factors]
    at = COLUMNS.index("task")
    out = df[[*COLUMNS[:at], *factors, *COLUMNS[at:], *extra]].reset_index(drop=True)
    out.attrs["source"] = str(path)
    return out


def load_results(path: str | Path) -> pd.DataFrame:
    """Load a results table from a study directory or a .csv / .parquet / .json file.

    Args:
        path: a study directory (holding results.csv, results.parquet or results.json) or a file.

    Returns:
        The checked table, one row per (cell, task, metric); `attrs["source"]` names the file.

    Raises:
        PLWError: the file is missing or unreadable, or a column is missing or malformed.
    """
    file = resolve_results_path(path)
    return normalize_results(_read_table(file), file)
