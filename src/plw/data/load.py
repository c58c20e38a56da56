"""One router for data sources: the synthetic suite, a dataset preset, or a file / hub dataset.

A data source (`DataConfig.path`, `plw stats DATA`, ...) is

- `synthetic`: the generated suite (`plw.data.synthetic`), options in `config`, `split` train/eval;
- a preset, `NAME` or `NAME@SOURCE` (`plw.data.presets`);
- anything else: a local file or hub dataset id (`plw.data.sources`).

This module sits above the readers and the presets, which never import it, so there is no import
loop; callers that only read files use `plw.data.sources.read_records`.
"""

from __future__ import annotations

from plw.data.presets import load_preset, parse_preset
from plw.data.sources import Record, read_records
from plw.data.synthetic import resolve_source


def load_records(
    source: str, *, config: str | None = None, split: str = "train", limit: int | None = None
) -> list[Record]:
    """Load the records a data source names.

    Args:
        source: `synthetic`, a preset (`NAME` or `NAME@SOURCE`), a .json / .jsonl / .csv / .parquet
            file, or a hub dataset id.
        config: hub dataset configuration name (for `synthetic`: its generator options).
        split: hub split (for `synthetic`: train or eval).
        limit: keep only the first `limit` records.

    Raises:
        PLWError: an unknown preset or synthetic option, a missing or unreadable file, malformed
            JSON, or a hub dataset that cannot load.
    """
    synthetic = resolve_source(source, config, split)
    if synthetic is not None:
        return read_records(str(synthetic), limit=limit)
    preset = parse_preset(source)
    if preset is not None:
        records = load_preset(*preset, config=config, split=split)
        return records[:limit] if limit is not None else records
    return read_records(source, config=config, split=split, limit=limit)
