"""The item-level analysis of a study: the primary fit whenever per-item results exist.

Every cell answers the same items, so the analysis works at the level the data were collected:

- **primary**: each benchmark's score metric per item (`plw.analysis.scores.primary_metric`); the
  0/1 ones (acc, acc_norm, exact match, bleu_acc) enter the binomial item-level GLMM
  (`plw.analysis.item_glmm`) per dataset, and pooled when there are several datasets;
- **paired**: every PLW level against PLW 0 and PLW 1, per benchmark and pooled
  (`plw.analysis.paired`), on the same primary outcomes;
- **secondary**, declared so: the continuous per-item scores (SECONDARY) with the Gaussian
  item-level model and the same paired comparisons.

Benchmarks are the results table's tasks, except the mechanism rows (`train`, `retention`) and a
task's aggregate when its families are scored apart (`synthetic` when `synthetic:<family>` rows
exist, as `plw.analysis.scores` does for the aggregate fit).
"""

from __future__ import annotations

import pandas as pd

from plw.analysis.items import ItemSetError, check_item_sets
from plw.analysis.paired import is_binary, paired_comparisons
from plw.analysis.results import factor_columns
from plw.analysis.scores import NOT_SCORED, primary_metric

SECONDARY = ("margin", "ll_per_byte", "mc2")
"""Continuous per-item scores analysed as secondary outcomes: the gold answer's log-probability
margin over the best wrong answer, its log-likelihood per byte, and TruthfulQA-MC2's true mass."""


def benchmark_items(items: pd.DataFrame) -> pd.DataFrame:
    """The item rows of benchmarks, with a `benchmark` column (the task name); see the module doc."""
    frame = items[~items["task"].isin(NOT_SCORED)]
    families = {t.split(":")[0] for t in frame["task"].unique() if ":" in t}
    frame = frame[~frame["task"].isin(families)]
    return frame.assign(benchmark=frame["task"].astype(str))


def primary_outcomes(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """(binary rows, continuous rows, {benchmark: metric}) of each benchmark's primary metric."""
    binary, continuous, chosen = [], [], {}
    for benchmark, rows in frame.groupby("benchmark", sort=True):
        available = set(rows["metric"])
        metric = primary_metric(benchmark, available) or primary_metric(benchmark.split(":")[0], available)
        if metric is None:
            continue
        part = rows[rows["metric"] == metric]
        chosen[str(benchmark)] = metric
        (binary if is_binary(metric, part["value"]) else continuous).append(part)
    empty = frame.iloc[0:0]
    return (
        pd.concat(binary) if binary else empty,
        pd.concat(continuous) if continuous else empty,
        chosen,
    )


def _fits(rows: pd.DataFrame, family: str) -> dict:
    """{dataset: fit} and, with several datasets, {"pooled": fit} of one outcome family."""
    from plw.analysis.item_glmm import analyze_items

    if rows.empty:
        return {}
    out = {str(d): analyze_items(part, str(d), family) for d, part in rows.groupby("dataset", sort=True)}
    if len(out) > 1:
        out["pooled"] = analyze_items(rows, "pooled", family)
    return out


def analyze_item_level(items: pd.DataFrame, results: pd.DataFrame | None = None, seed: int = 0) -> dict:
    """The item-level section of `plw analyze` (keys in docs/analysis.md, "Item-level analysis").

    Args:
        items: the per-item table with factor columns (`plw.analysis.items.load_items`).
        results: the aggregate table, to find cells with aggregate scores but no items.
        seed: seed of the paired permutation tests.

    Raises:
        ItemSetError: cells of one benchmark answered different items, or a cell lacks a benchmark's
            items; the message names the cell and the benchmark (the aggregate analysis is unaffected).
    """
    problems = check_item_sets(items, results)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ItemSetError(problems[0] + more)
    frame = benchmark_items(items)
    # A benchmark whose primary metric is continuous (TruthfulQA-MC2's mass) is in SECONDARY.
    binary, _, chosen = primary_outcomes(frame)
    chosen_binary = set(binary["benchmark"]) if not binary.empty else set()
    secondary = {
        m: _fits(frame[frame["metric"] == m], "gaussian") for m in SECONDARY if (frame["metric"] == m).any()
    }
    varied = [c for c in factor_columns(frame) if frame[c].astype(str).nunique() > 1]
    notes = (
        [f"extra factor(s) {', '.join(varied)} vary but are not terms of the item-level fit: read the "
         "aggregate analysis's PLW x factor results for them"]
        if varied
        else []
    )  # fmt: skip
    return {
        "notes": notes,
        "outcomes": chosen,
        "binary_benchmarks": sorted(binary["benchmark"].unique()) if not binary.empty else [],
        "n_cells": int(frame["cell"].nunique()),
        "n_items": int(frame.groupby("benchmark")["item"].nunique().sum()) if not frame.empty else 0,
        "fits": _fits(binary, "binomial"),
        # Pooled over the same 0/1 outcomes as the fit; MC2's mass is compared under "secondary".
        "paired": paired_comparisons(frame[frame["benchmark"].isin(chosen_binary)], "primary", seed=seed),
        "secondary": {
            "fits": secondary,
            "paired": {
                m: paired_comparisons(frame, m, seed=seed) for m in SECONDARY if (frame["metric"] == m).any()
            },
        },
    }


def headline(section: dict) -> dict | None:
    """The fit a verdict is read from: the pooled binary fit, else the only dataset's."""
    fits = section.get("fits") or {}
    if "pooled" in fits:
        return fits["pooled"]
    return next(iter(fits.values()), None)


__all__ = [
    "SECONDARY",
    "ItemSetError",
    "analyze_item_level",
    "benchmark_items",
    "headline",
    "primary_outcomes",
]
