"""Paired per-item comparisons of every PLW level against the lowest (PLW 0) and highest (PLW 1) level.

Every cell of a study answers the same items of each benchmark, so two PLW levels can be compared item
by item: an item's difficulty is shared by both levels and cancels in their difference, which makes
the comparison far more precise than one of two independent accuracies (docs/analysis.md).

Method, per (dataset, benchmark) and pooled over a dataset's benchmarks:

- Rows: `regularizer` "none" (when the column exists), finite values of the chosen metric.
- Items are the clusters: the values of all cells at one PLW level (seeds, and models if there are
  several) are averaged within each item first. Items missing at either level are left out.
- diff = mean over items of d_i = x_i(L) - x_i(R); se = SD(d) / sqrt(n) (ddof 1); the 95% interval is
  diff +- t(n - 1, 0.975) se. `se_unpaired` = sqrt(var(x(L)) / n + var(x(R)) / n) (ddof 1; for 0/1
  outcomes p (1 - p) / n times n / (n - 1)) is the SE ignoring the pairing, to show what pairing saves.
- p: an exact McNemar test (binomial test of the discordant pairs) for a binary metric with one cell
  per level; otherwise a sign-flip permutation test of mean(d) over items, as a mid-p (ties, which
  averaged 0/1 scores make in bulk, count half; plw.analysis.paired_stats). `test` says which.
- Pooled: all items of all the dataset's benchmarks with equal weight per item (a large benchmark
  counts more), tested the same way; only when the dataset has several benchmarks.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from plw.analysis.paired_stats import MCNEMAR, RESAMPLES, SIGN_FLIP, compare
from plw.analysis.scores import primary_metric
from plw.errors import PLWError

BINARY_METRICS = frozenset(
    {"acc", "acc_norm", "exact_match", "bleu_acc", "rouge1_acc", "rouge2_acc", "rougeL_acc"}
)
"""Metrics that are 0/1 per item (when every value is 0 or 1: lm-eval calls MC2's mass `acc` too)."""
POOLED = "pooled"
REQUIRED = ("cell", "plw", "benchmark", "item", "metric", "value")
COLUMNS = (
    "dataset",
    "benchmark",
    "metric",
    "PLW",
    "vs PLW",
    "items",
    "mean",
    "reference mean",
    "difference",
    "95% CI",
    "SE (paired)",
    "SE (unpaired)",
    "p",
    "test",
)
"""Header of `paired_text_rows`."""

__all__ = ["MCNEMAR", "SIGN_FLIP", "paired_comparisons", "paired_text_rows", "compare"]


def paired_comparisons(
    items: pd.DataFrame, metric_kind: str = "primary", resamples: int = RESAMPLES, seed: int = 0
) -> dict:
    """Every PLW level against the low and high reference level, item by item.

    Args:
        items: the item frame, one row per (cell, benchmark, item, metric): columns cell, plw,
            benchmark (or task), item, metric, value, and optionally dataset, model, seed, regularizer.
        metric_kind: "primary" (each benchmark's score metric, plw.analysis.scores.primary_metric) or
            a metric name such as "margin" or "ll_per_byte" (benchmarks without it are left out).
        resamples: random sign flips of the permutation test.
        seed: seed of the sign flips.

    Returns:
        JSON-ready {"metric_kind", "reference_levels": {dataset: {"low", "high"}}, "rows": [{dataset,
        benchmark ("pooled" for the pooled row), metric, plw, reference, n_items, mean,
        reference_mean, diff, se, se_unpaired, ci: [lo, hi], p_value, test}], "notes": [...]}.
        Undefined numbers (one item) are None.
    """
    frame, notes = select_items(items, metric_kind)
    rows, refs = [], {}
    for dataset, part in frame.groupby("dataset", sort=True):
        low, high, ref_notes = reference_levels(sorted(part["plw"].unique()))
        refs[str(dataset)] = {"low": low, "high": high}
        notes += [f"dataset {dataset}: {n}" for n in ref_notes]
        if part["model"].nunique() > 1:
            notes.append(f"dataset {dataset}: {part['model'].nunique()} models averaged within each level")
        rows += _dataset_rows(str(dataset), part, (low, high), metric_kind, resamples, seed)
    notes.append(
        f"Items are the clusters (cells of one level averaged within an item first); pooled rows weigh "
        f"every item equally; p: {MCNEMAR} for 0/1 scores with one cell per level, else {SIGN_FLIP} "
        f"over items (mid-p; {resamples} random flips, all flips when fewer, seed {seed})."
        " Exact McNemar is conservative with few discordant pairs."
    )
    return {"metric_kind": metric_kind, "reference_levels": refs, "rows": rows, "notes": notes}


def select_items(items: pd.DataFrame, metric_kind: str) -> tuple[pd.DataFrame, list[str]]:
    """The rows compared: unregularised cells, finite values, one metric per benchmark.

    Returns:
        (frame with columns dataset, model, cell, plw, benchmark, item, metric, value; notes).

    Raises:
        PLWError: a required column is missing.
    """
    frame = items.copy()
    if "benchmark" not in frame.columns and "task" in frame.columns:
        frame = frame.rename(columns={"task": "benchmark"})
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise PLWError(f"item frame: missing column(s) {', '.join(missing)}")
    notes = []
    if "regularizer" in frame.columns:
        regularised = frame["regularizer"].fillna("none") != "none"
        if regularised.any():
            notes.append(f"{int(regularised.sum())} rows of regularised cells left out")
        frame = frame[~regularised]
    factors = {c: frame[c].astype(str) if c in frame.columns else "default" for c in ("dataset", "model")}
    frame = frame.assign(
        **factors,
        plw=frame["plw"].astype(float),
        item=frame["item"].astype(str),
        value=frame["value"].astype(float),
    )
    frame = frame[np.isfinite(frame["value"])]
    keep = _chosen_metrics(frame, metric_kind, notes)
    frame = frame.merge(keep, on=["benchmark", "metric"])
    return frame[["dataset", "model", "cell", "plw", "benchmark", "item", "metric", "value"]], notes


def _chosen_metrics(frame: pd.DataFrame, metric_kind: str, notes: list[str]) -> pd.DataFrame:
    """(benchmark, metric) pairs to compare."""
    pairs = []
    for benchmark, rows in frame.groupby("benchmark", sort=True):
        available = set(rows["metric"])
        if metric_kind == "primary":
            # A synthetic family "synthetic:lookup" is scored by its task's rule.
            metric = primary_metric(benchmark, available) or primary_metric(
                benchmark.split(":")[0], available
            )
        else:
            metric = metric_kind if metric_kind in available else None
        if metric is None:
            notes.append(
                f"benchmark {benchmark}: no {metric_kind} metric among {sorted(available)}; left out"
            )
        else:
            pairs.append((benchmark, metric))
    return pd.DataFrame(pairs, columns=["benchmark", "metric"])


def reference_levels(levels: list[float]) -> tuple[float, float, list[str]]:
    """(low, high, notes): PLW 0 and PLW 1, or the lowest / highest level present instead."""
    low = 0.0 if 0.0 in levels else float(levels[0])
    high = 1.0 if 1.0 in levels else float(levels[-1])
    notes = []
    if low != 0.0:
        notes.append(f"no PLW 0 cells; the lowest level, PLW {low:g}, is the low reference")
    if high != 1.0:
        notes.append(f"no PLW 1 cells; the highest level, PLW {high:g}, is the high reference")
    return low, high, notes


def is_binary(metric: str, values: pd.Series) -> bool:
    """A 0/1 outcome: a binary metric whose values are all 0 or 1."""
    return (metric in BINARY_METRICS or metric.startswith("exact_match_")) and bool(values.isin((0, 1)).all())


def _dataset_rows(
    dataset: str, part: pd.DataFrame, refs: tuple[float, float], metric_kind: str, resamples: int, seed: int
) -> list[dict]:
    groups = list(part.groupby("benchmark", sort=True))
    if len(groups) > 1:
        groups.append((POOLED, part))
    out = []
    for benchmark, rows in groups:
        metrics = sorted(rows["metric"].unique())
        metric = metrics[0] if len(metrics) == 1 else metric_kind
        binary = all(is_binary(m, r["value"]) for (_, m), r in rows.groupby(["benchmark", "metric"]))
        out += _level_rows(
            rows,
            refs,
            binary,
            resamples,
            seed,
            {"dataset": dataset, "benchmark": benchmark, "metric": metric},
        )
    return out


def _level_rows(
    rows: pd.DataFrame, refs: tuple[float, float], binary: bool, resamples: int, seed: int, keys: dict
) -> list[dict]:
    """One row per (reference, other level) of one benchmark or of the pooled items."""
    means = rows.groupby(["benchmark", "item", "plw"])["value"].mean().unstack("plw")  # items x levels
    cells = rows.groupby("plw")["cell"].nunique()
    out = []
    for ref in dict.fromkeys(refs):  # the same level twice (one level only) is compared once
        if ref not in means.columns:
            continue
        for level in means.columns:
            if level == ref:
                continue
            pair = means[[level, ref]].dropna()
            exact = binary and cells[level] == 1 and cells[ref] == 1
            stats = compare(pair[level].to_numpy(), pair[ref].to_numpy(), exact, resamples, seed)
            out.append(keys | {"plw": float(level), "reference": float(ref)} | _json(stats))
    return out


def _json(stats: dict) -> dict:
    """NaN -> None, numpy scalars -> Python numbers."""

    def clean(v):
        if isinstance(v, list):
            return [clean(x) for x in v]
        if isinstance(v, (float, np.floating)):
            return None if math.isnan(v) else float(v)
        return int(v) if isinstance(v, np.integer) else v

    return {k: clean(v) for k, v in stats.items()}


def _fmt(v, signed: bool = False) -> str:
    if v is None:
        return ""
    return f"{v:+.4g}" if signed else f"{v:.4g}"


def paired_text_rows(result: dict) -> list[list[str]]:
    """The rows of `paired_comparisons` as display strings, in the order of COLUMNS (no header)."""
    out = []
    for r in result["rows"]:
        lo, hi = r["ci"]
        ci = "" if lo is None else f"[{_fmt(lo, True)}, {_fmt(hi, True)}]"
        p = r["p_value"]
        out.append(
            [
                r["dataset"],
                r["benchmark"],
                r["metric"],
                f"{r['plw']:g}",
                f"{r['reference']:g}",
                str(r["n_items"]),
                _fmt(r["mean"]),
                _fmt(r["reference_mean"]),
                _fmt(r["diff"], True),
                ci,
                _fmt(r["se"]),
                _fmt(r["se_unpaired"]),
                "" if p is None else f"{p:.2g}",
                r["test"],
            ]
        )
    return out
