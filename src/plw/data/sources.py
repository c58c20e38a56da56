"""Read instruction records from local files or the Hugging Face hub (readers only).

Every record keeps where it came from (`Record.where`, e.g. `data.jsonl:12` or `data.json[3]`) so a
malformed record is reported by file and line. Local formats: JSON (a list of objects), JSON lines,
CSV and Parquet; anything else is a hub dataset id. Dataset presets and the synthetic suite are
routed to in `plw.data.load`, which sits above this module and the ones built on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plw.errors import PLWError

LOCAL_SUFFIXES = (".json", ".jsonl", ".csv", ".parquet")


@dataclass(frozen=True)
class Record:
    """One raw record and its location, for error messages."""

    data: dict[str, Any]
    where: str


def read_records(
    source: str, *, config: str | None = None, split: str = "train", limit: int | None = None
) -> list[Record]:
    """Read records from a local file or a hub dataset.

    Args:
        source: path to a .json / .jsonl / .csv / .parquet file, or a hub dataset id.
        config: hub dataset configuration name.
        split: hub split.
        limit: keep only the first `limit` records.

    Raises:
        PLWError: missing file, unreadable bytes, malformed JSON, or a hub dataset that cannot load.
    """
    path = Path(source).expanduser()
    if path.suffix in LOCAL_SUFFIXES or path.exists():
        records = _load_local(path)
    else:
        records = _load_hub(source, config, split)
    return records[:limit] if limit is not None else records


def _load_local(path: Path) -> list[Record]:
    if not path.is_file():
        raise PLWError(f"{path}: data file not found")
    if path.suffix == ".parquet":
        return _from_table(path, _read_table(path, "parquet"))
    if path.suffix == ".csv":
        return _from_table(path, _read_table(path, "csv"))
    return read_json_records(path)


def read_json_records(path: Path) -> list[Record]:
    """The objects of a JSON list file or a JSON lines file (any file whose text does not start with
    `[`, or any `.jsonl`), each with its location: `file.jsonl:12` (line) or `file.json[3]` (index).

    The one JSON reader of plw: training data and benchmark files (plw.evaluation.data) alike, so a
    malformed file reads the same wherever it is loaded.

    Raises:
        PLWError: missing file, bytes that are not UTF-8, malformed JSON, or a value that is not an
            object, each message starting with the file and line (or index).
    """
    if not path.is_file():
        raise PLWError(f"{path}: data file not found")
    text = _read_text(path)
    if path.suffix == ".jsonl" or not text.lstrip().startswith("["):
        return _parse_jsonl(path, text)
    return _parse_json_list(path, text)


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise PLWError(f"{path}:{line}: bytes at offset {err.start} are not valid UTF-8") from err


def _parse_jsonl(path: Path, text: str) -> list[Record]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            hint = " (a JSON list in a .jsonl file? name it .json)" if line.lstrip().startswith("[") else ""
            raise PLWError(f"{path}:{number}: invalid JSON line: {err.msg}{hint}") from err
        if not isinstance(value, dict):
            raise PLWError(f"{path}:{number}: expected a JSON object, got {type(value).__name__}")
        records.append(Record(value, f"{path}:{number}"))
    return records


def _parse_json_list(path: Path, text: str) -> list[Record]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise PLWError(f"{path}:{err.lineno}: invalid JSON: {err.msg}") from err
    if not isinstance(value, list):
        raise PLWError(f"{path}: expected a JSON list of records, got {type(value).__name__}")
    records = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise PLWError(f"{path}[{index}]: expected a JSON object, got {type(item).__name__}")
        records.append(Record(item, f"{path}[{index}]"))
    return records


def _read_table(path: Path, kind: str):
    import pandas as pd

    try:
        if kind == "csv":
            # keep_default_na=False: an empty CSV cell is an empty string (Alpaca's `input`), not NaN.
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        return pd.read_parquet(path)
    except Exception as err:  # pandas raises many types for unreadable files
        raise PLWError(f"{path}: cannot read {kind}: {str(err).splitlines()[0]}") from err


def _from_table(path: Path, frame) -> list[Record]:
    # CSV line numbers count the header as line 1.
    offset = 2 if path.suffix == ".csv" else 0
    sep = ":" if path.suffix == ".csv" else "#"
    rows = frame.to_dict(orient="records")
    return [Record(_plain(row), f"{path}{sep}{i + offset}") for i, row in enumerate(rows)]


def _plain(row: dict) -> dict:
    """Parquet list columns arrive as numpy arrays; records hold plain Python values."""
    out = {}
    for key, value in row.items():
        out[key] = value.tolist() if hasattr(value, "tolist") and not isinstance(value, str) else value
    return out


def _load_hub(name: str, config: str | None, split: str) -> list[Record]:
    import datasets

    try:
        dataset = datasets.load_dataset(name, config, split=split)
    except Exception as err:  # offline, unknown name, gated repo ...
        raise PLWError(f"dataset '{name}': cannot load from the hub: {str(err).splitlines()[0]}") from err
    return [Record(dict(row), f"{name}[{i}]") for i, row in enumerate(dataset)]
