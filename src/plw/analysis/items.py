"""The per-item table: one score per cell x task x item x metric (docs/results-schema.md).

Exported by `plw results STUDY --items -o FILE` with only ITEM_COLUMNS; the factor columns (study,
model, dataset, plw, seed, regularizer, train.<path>) come from the aggregate results table and are
joined back by `cell` on loading, so the item file stays small.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from plw.analysis.results import (
    COLUMNS,
    _blank,
    _numeric,
    _text,
    factor_columns,
    load_results,
    require_columns,
)
from plw.errors import PLWError

ITEM_COLUMNS = ("cell", "task", "item", "metric", "value", "item_hash")
"""Columns of an exported per-item file (`item_hash` optional: empty when tasks record none)."""
REQUIRED = ITEM_COLUMNS[:-1]
SUFFIXES = (".csv", ".csv.gz", ".parquet")
STUDY_ITEMS_FILE = "items.csv.gz"
"""Beside a study directory's results.csv: its per-item table, written by the sweep."""


class ItemSetError(PLWError):
    """Cells of one (dataset, benchmark) were scored on different items."""


def read_item_file(path: str | Path) -> pd.DataFrame:
    """An item file as read (.csv, .csv.gz or .parquet), text columns as text.

    Raises:
        PLWError: missing, unreadable, or of another format.
    """
    path = Path(path)
    name = path.name.lower()
    if not path.is_file():
        raise PLWError(f"{path}: no such file")
    try:
        if name.endswith((".csv", ".csv.gz")):
            # Text, so item "007" stays "007" and a bad value is reported rather than made NaN.
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        if name.endswith(".parquet"):
            return pd.read_parquet(path)
    except (OSError, ValueError, EOFError, pd.errors.ParserError) as err:
        raise PLWError(f"{path}: cannot read the table ({str(err).splitlines()[0]})") from None
    raise PLWError(f"{path}: unsupported item file format; use {', '.join(SUFFIXES)}")


def normalize_items(
    frame: pd.DataFrame, results: pd.DataFrame | None = None, source: str | Path = "<items>"
) -> pd.DataFrame:
    """Check and type a raw item table; join the factor columns of `results` by cell.

    Args:
        frame: columns cell, task, item, metric, value[, item_hash] (more are dropped).
        results: a `load_results` frame; None keeps only ITEM_COLUMNS (no join, no cell check).
        source: where `frame` came from, for messages.

    Returns:
        Columns study, cell, model, dataset, plw, seed, regularizer, train.<path>..., task, item,
        metric, value, item_hash (without `results`: ITEM_COLUMNS); item and item_hash are text.

    Raises:
        PLWError: a column is missing, a value is not numeric (naming its row), or a cell is not in
            the results table.
    """
    frame = require_columns(frame, REQUIRED, source)
    frame["value"] = _numeric(frame, "value", Path(source), allow_blank=True)
    for column in ("cell", "task", "item", "metric"):
        frame[column] = _text(frame[column], "")
    hashes = frame["item_hash"] if "item_hash" in frame.columns else pd.Series(None, index=frame.index)
    frame["item_hash"] = _text(hashes, "").where(~_blank(hashes), None)
    frame = frame[list(ITEM_COLUMNS)].reset_index(drop=True)
    return frame if results is None else join_factors(frame, results, source)


def join_factors(items: pd.DataFrame, results: pd.DataFrame, source: str | Path = "<items>") -> pd.DataFrame:
    """ITEM_COLUMNS rows with each cell's factor columns from `results` in front (see normalize_items)."""
    factors = cell_factors(results)
    unknown = sorted(set(items["cell"]) - set(factors["cell"]))
    if unknown:
        table = results.attrs.get("source", "")
        more = f" ({len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise PLWError(f"{source}: cell {unknown[0]!r} is not in the results table {table}".rstrip() + more)
    out = items.merge(factors, on="cell", how="left", validate="many_to_one")
    columns = [*factors.columns, *ITEM_COLUMNS[1:]]
    out = out[columns]
    out.attrs["source"] = str(source)
    return out


def cell_factors(results: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: study, cell, model, dataset, plw, seed, regularizer, train.<path>..."""
    at = COLUMNS.index("task")
    columns = [*COLUMNS[:at], *factor_columns(results)]
    return results[columns].drop_duplicates("cell").reset_index(drop=True)


def load_items(path: str | Path, results: pd.DataFrame | str | Path) -> pd.DataFrame:
    """An exported item file joined with the factors of `results` (a load_results frame or its path)."""
    if not isinstance(results, pd.DataFrame):
        results = load_results(results)
    return normalize_items(read_item_file(path), results, path)


def find_items(
    path: str | Path, results: pd.DataFrame, explicit: str | Path | None = None
) -> pd.DataFrame | None:
    """The per-item table that goes with a results table, or None when there is none.

    Args:
        path: what `load_results` was given: a study directory (its STUDY_ITEMS_FILE) or a results
            file (a sibling `<stem>-items.csv.gz`, `.csv` or `.parquet`, as docs/results/ keeps them).
        results: the loaded results table (factor columns are joined from it).
        explicit: an item file given by the user; overrides the search.
    """
    if explicit is not None:
        return load_items(explicit, results)
    path = Path(path)
    stem = path.name.split(".")[0]
    candidates = (
        [path / STUDY_ITEMS_FILE]
        if path.is_dir()
        else [path.with_name(f"{stem}-items{suffix}") for suffix in (".csv.gz", ".csv", ".parquet")]
    )
    found = next((c for c in candidates if c.is_file()), None)
    return load_items(found, results) if found is not None else None


def check_item_sets(items: pd.DataFrame, results: pd.DataFrame | None = None) -> list[str]:
    """Problems that make cells' per-item scores incomparable; [] when there are none.

    Within each (dataset, benchmark), every cell must answer the same items with the same
    item_hash; a cell differing from the set most cells share is named. With `results`, a cell
    with an aggregate score for a benchmark (plw.analysis.scores.select_scores) but no item rows for
    it is named too, for benchmarks some cell has item rows for (tasks scored only on the whole
    corpus, such as WMT's BLEU, have none anywhere).
    """
    problems = []
    items = items if "dataset" in items.columns else items.assign(dataset="?")  # not joined to factors
    for (dataset, task), rows in items.groupby(["dataset", "task"], sort=True):
        sets = {cell: _item_set(part) for cell, part in rows.groupby("cell", sort=True)}
        # Most cells' set is the reference: one odd cell is named, not all the others.
        common, _ = Counter(sets.values()).most_common(1)[0]
        for cell, answered in sets.items():
            if answered != common:
                problems.append(
                    f"cell {cell}, benchmark {task} (dataset {dataset}): {_difference(answered, common)}"
                )
    if results is not None:
        problems += _missing_items(items, results)
    return problems


def require_same_items(items: pd.DataFrame, results: pd.DataFrame | None = None) -> None:
    """Raise ItemSetError (the first problem and how many more) unless `check_item_sets` finds none."""
    problems = check_item_sets(items, results)
    if problems:
        more = f" ({len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise ItemSetError(f"{items.attrs.get('source', 'items')}: {problems[0]}{more}")


def _item_set(rows: pd.DataFrame) -> frozenset[tuple[str, str | None]]:
    pairs = rows[["item", "item_hash"]].drop_duplicates("item")
    return frozenset((item, h) for item, h in zip(pairs["item"], pairs["item_hash"], strict=True))


def _difference(answered: frozenset, common: frozenset) -> str:
    ids, common_ids = {i for i, _ in answered}, {i for i, _ in common}
    if ids != common_ids:
        extra, lacking = sorted(ids - common_ids), sorted(common_ids - ids)
        first = f"has item {extra[0]!r}" if extra else f"lacks item {lacking[0]!r}"
        counts = f"{len(extra)} extra, {len(lacking)} lacking"
        return f"{len(ids)} items, other cells {len(common_ids)}; {first} ({counts})"
    changed = sorted(i for i, h in answered - common)
    return f"item {changed[0]!r} has another item_hash than in other cells ({len(changed)} item(s) differ)"


def _missing_items(items: pd.DataFrame, results: pd.DataFrame) -> list[str]:
    from plw.analysis.scores import select_scores

    scores, _ = select_scores(results)
    answered = set(zip(items["cell"], items["task"], strict=True))
    covered = set(items["task"])
    scored = scores[["cell", "dataset", "benchmark"]].drop_duplicates()
    return [
        f"cell {cell}, benchmark {benchmark} (dataset {dataset}): aggregate results but no per-item rows"
        for cell, dataset, benchmark in scored.itertuples(index=False)
        if benchmark in covered and (cell, benchmark) not in answered
    ]
