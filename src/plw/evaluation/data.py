"""Benchmark rows from local files (hub row schema) or from the Hugging Face hub, validated.

Local layout under a data directory (as /work/shared/data/bench): `ai2_arc/ARC-Easy/test.jsonl`,
`piqa/validation.jsonl`, `truthful_qa/generation/validation.jsonl`, `wmt16/ro-en/test.jsonl`,
`alpaca_eval/text_davinci_003_model_outputs.json`, ... A `.jsonl` file holds one row per line, a
`.json` file a list of rows; both are read by plw.data.sources.read_json_records, as training data
is. Every row is checked against the task's schema before any scoring, so a malformed file fails with
its path and line instead of producing a score on partial data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plw.data.sources import Record, read_json_records
from plw.errors import PLWError

Validator = Callable[[dict], None]
"""Raises `RowError` (with a field name) when a row does not fit the schema."""


class RowError(ValueError):
    """A row that does not fit its schema; `field` names the offending field."""

    def __init__(self, field: str, message: str):
        super().__init__(f"field '{field}': {message}")


@dataclass(frozen=True)
class DatasetRef:
    """Where a split lives.

    Attributes:
        hub_path: hub dataset id, e.g. "allenai/ai2_arc".
        hub_name: hub config name, e.g. "ARC-Easy", or None.
        split: split name.
        local: path of the local file relative to a data directory.
    """

    hub_path: str
    hub_name: str | None
    split: str
    local: str

    def describe(self) -> str:
        name = f" ({self.hub_name})" if self.hub_name else ""
        return f"{self.hub_path}{name} {self.split}"


def load_rows(ref: DatasetRef, data_dir: Path | str | None, validate: Validator, task: str) -> list[dict]:
    """All rows of a split, validated.

    Args:
        ref: the split.
        data_dir: local data directory; None loads from the hub.
        validate: schema check for one row.
        task: task name, for error messages.

    Raises:
        PLWError: missing file, malformed JSON or row, or a hub dataset that cannot be loaded.
    """
    if data_dir is None:
        where = f"{ref.describe()} (hub)"
        rows = [Record(row, f"{where} row {i}") for i, row in enumerate(_hub_rows(ref, task))]
    else:
        rows = _file_rows(Path(data_dir) / ref.local, task)
    if not rows:
        raise PLWError(f"task {task}: no rows in {ref.local if data_dir else ref.describe()}")
    for row in rows:
        try:
            validate(row.data)
        except RowError as err:
            raise PLWError(f"{row.where}: malformed row for task {task}: {err}") from None
    return [row.data for row in rows]


def _file_rows(path: Path, task: str) -> list[Record]:
    # Checked here, not left to the reader, so that the message names the task that wanted the file.
    if not path.is_file():
        raise PLWError(f"task {task}: data file not found: {path}")
    return read_json_records(path)


def _hub_rows(ref: DatasetRef, task: str) -> list[dict]:
    try:
        import datasets

        ds = datasets.load_dataset(ref.hub_path, ref.hub_name, split=ref.split)
    except Exception as err:  # noqa: BLE001 - any loader failure becomes one readable line
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise PLWError(
            f"task {task}: could not load {ref.describe()} from the hub ({first}); "
            "pass --data-dir with local files"
        ) from err
    return [dict(row) for row in ds]


# ---- schema helpers ----


def field(row: dict, path: str, kind: type | tuple[type, ...]) -> Any:
    """The value at a dotted `path` of `row`, checked to be of `kind`."""
    value: Any = row
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise RowError(path, "missing")
        value = value[part]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise RowError(path, f"expected {names}, got {type(value).__name__}")
    return value


def text(row: dict, path: str) -> str:
    """A non-empty string field."""
    value = field(row, path, str)
    if not value.strip():
        raise RowError(path, "empty")
    return value


def string_list(row: dict, path: str, min_len: int = 1) -> list[str]:
    """A list of strings with at least `min_len` entries."""
    value = field(row, path, list)
    if len(value) < min_len:
        raise RowError(path, f"expected at least {min_len} entries, got {len(value)}")
    if not all(isinstance(v, str) for v in value):
        raise RowError(path, "expected a list of strings")
    return value
