"""Named presets for the paper's datasets, usable wherever a data path is (configs, `plw stats`).

A data source is either

- a preset name, loaded from its hub dataset: `alpaca`, `alpaca-cleaned`, `alpaca-short`, `dolly`;
- `NAME@SOURCE`: the same preset built from a local file (or another hub id) with the hub schema,
  e.g. `alpaca-short@/data/alpaca_cleaned.json` inverts a local copy of AlpacaDataCleaned;
- anything else: a local file or hub dataset id, as `plw.data.sources.read_records` reads it.

An existing local file always wins over a preset of the same name. `NAME@` is only a preset when
NAME is a known preset; hub ids cannot contain "@", and an unknown NAME is an error.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from plw.data.formats import RecordError
from plw.data.invert import invert_records
from plw.data.sources import Record, read_records
from plw.errors import PLWError

log = logging.getLogger("plw.data")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass(frozen=True)
class Preset:
    """A named dataset: where it lives on the hub and how its records become plw records."""

    name: str
    hub_id: str
    description: str
    transform: Callable[[list[Record], str], list[Record]]


def _identity(records: list[Record], name: str) -> list[Record]:
    return records


def _invert(records: list[Record], name: str) -> list[Record]:
    """AlpacaDataShort: prompt-invert; records that cannot be inverted (empty output) are left out."""
    skipped: list[str] = []
    rows = invert_records(records, skip_bad_records=True, skipped=skipped)
    if skipped:
        log.warning(
            "preset %s: left out %d record(s) that cannot be inverted, e.g. %s",
            name,
            len(skipped),
            skipped[0],
        )
    return [Record(row, records[row["source_index"]].where) for row in rows]


def _dolly(records: list[Record], name: str) -> list[Record]:
    """databricks-dolly-15k to Alpaca fields: instruction, context -> input, response -> output."""
    out = []
    for record in records:
        data = record.data
        for key in ("instruction", "response"):
            if key not in data:
                err = RecordError(
                    record.where, key, "missing (preset 'dolly' expects instruction, context, response)"
                )
                raise PLWError(str(err))
        row = {
            "instruction": data["instruction"],
            "input": data.get("context") or "",
            "output": data["response"],
        }
        if "category" in data:
            row["category"] = data["category"]
        out.append(Record(row, record.where))
    return out


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("alpaca", "tatsu-lab/alpaca", "AlpacaData, 52k records (Rg 3.27 in the paper)", _identity),
        Preset("alpaca-cleaned", "yahma/alpaca-cleaned", "AlpacaDataCleaned (Rg 7.83)", _identity),
        Preset(
            "alpaca-short",
            "yahma/alpaca-cleaned",
            "AlpacaDataShort: prompt-inverted AlpacaDataCleaned (Rg 0.08)",
            _invert,
        ),
        Preset("dolly", "databricks/databricks-dolly-15k", "Dolly 15k mapped to Alpaca fields", _dolly),
    )
}


def parse_preset(source: str) -> tuple[Preset, str | None] | None:
    """The preset a data source names and its optional local override, or None if it names none.

    Raises:
        PLWError: `NAME@...` with an unknown NAME, or nothing after the "@".
    """
    if Path(source).expanduser().is_file():
        return None
    if source in PRESETS:
        return PRESETS[source], None
    name, at, location = source.partition("@")
    if not at or not _NAME.match(name):
        return None
    if name not in PRESETS:
        raise PLWError(
            f"unknown dataset preset '{name}' in '{source}': known presets are {', '.join(PRESETS)}"
        )
    if not location.strip():
        raise PLWError(f"'{source}': give a file or hub id after '@', e.g. {name}@/path/to/data.json")
    return PRESETS[name], location


def preset_local_file(source: str) -> Path | None:
    """The local file behind a `NAME@FILE` source (for existence checks and cache keys), else None."""
    parsed = parse_preset(source)
    if parsed is None or parsed[1] is None:
        return None
    path = Path(parsed[1]).expanduser()
    return path if path.suffix in (".json", ".jsonl", ".csv", ".parquet") or path.exists() else None


def load_preset(
    preset: Preset, location: str | None, *, config: str | None = None, split: str = "train"
) -> list[Record]:
    """Load a preset's records from its hub dataset, or from `location` when given.

    Raises:
        PLWError: the source cannot be read (offline hub: the message says how to use a local copy).
    """
    try:
        records = read_records(location or preset.hub_id, config=config, split=split)
    except PLWError as err:
        if location is not None:
            raise
        hint = f"; offline? use a local copy: {preset.name}@/path/to/{preset.hub_id.split('/')[-1]}.json"
        raise PLWError(f"preset '{preset.name}': {err}{hint}") from err
    return preset.transform(records, preset.name)
