"""Which metric is each task's score, and the table of scores the model is fitted to.

Each task contributes one score per cell: its primary metric (PRIMARY_METRICS, matched with shell
patterns so `wmt*` covers every translation direction), rescaled to [0, 1] where the metric is on
another scale (BLEU is 0-100). A task not listed falls back to its only metric. `retention` is an
NLL where lower is better, so it is plotted but kept out of the GLMM; `train` holds the mechanism
measures.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

import pandas as pd

from plw.analysis.results import CELL_COLUMNS
from plw.errors import PLWError
from plw.evaluation.items import FAMILY_METRICS  # defined where the family metrics are written

PRIMARY_METRICS: dict[str, str] = {
    "arc_challenge": "acc_norm",
    "arc_easy": "acc_norm",
    "piqa": "acc_norm",
    "winogrande": "acc",
    "truthfulqa_mc1": "acc",
    # lm-eval reports TruthfulQA-MC2's score as "acc"; plw's own scorer and older exports say "mc2".
    "truthfulqa_mc2": "acc",
    "truthfulqa_gen": "bleu_acc",
    "wmt*": "bleu",
    "alpaca_eval": "win_rate",
    "synthetic_exact_match": "exact_match",
    "synthetic": "exact_match",
    "synthetic_*": "exact_match",
}
"""Task (or shell pattern) -> the metric used as its score."""

ALTERNATE_METRICS: dict[str, tuple[str, ...]] = {"truthfulqa_mc2": ("mc2",)}
"""Other names accepted for a task's primary metric, tried in order after PRIMARY_METRICS."""

SCALES: dict[tuple[str, str], float] = {("wmt*", "bleu"): 100.0}
"""(task pattern, metric) -> divisor that brings the metric to [0, 1]."""

NOT_SCORED = ("train", "retention")
"""Tasks kept out of the GLMM: mechanism measures, and retention (an NLL, lower is better)."""

SCORE_COLUMNS = (*CELL_COLUMNS, "benchmark", "metric", "score")


def _lookup(table: dict, task: str):
    if task in table:
        return table[task]
    for pattern, value in table.items():
        if fnmatchcase(task, pattern):
            return value
    return None


def primary_metric(task: str, available: list[str] | set[str]) -> str | None:
    """The metric used as `task`'s score, or None when it cannot be chosen.

    Args:
        task: the task name.
        available: the metrics the results table has for this task.

    Returns:
        The primary metric (or an accepted alternate name) when present, else the only metric when
        the task has exactly one, else None.
    """
    available = set(available)
    wanted = _lookup(PRIMARY_METRICS, task)
    for name in ([wanted] if wanted else []) + list(_lookup(ALTERNATE_METRICS, task) or ()):
        if name in available:
            return name
    if len(available) == 1:
        return next(iter(available))
    return None


def metric_scale(task: str, metric: str) -> float:
    """The divisor that brings `metric` of `task` to [0, 1] (1 when it already is)."""
    for (pattern, name), scale in SCALES.items():
        if metric == name and fnmatchcase(task, pattern):
            return scale
    return 1.0


def select_scores(results: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Pick each scored task's primary metric and rescale it to [0, 1].

    Args:
        results: the table from `load_results`.

    Returns:
        (scores, warnings): one row per (cell, benchmark) with columns SCORE_COLUMNS (score may be
        NaN for a missing value), and messages about tasks that were skipped.

    Raises:
        PLWError: a score lies outside [0, 1] after rescaling.
    """
    source = results.attrs.get("source", "<table>")
    warnings: list[str] = []
    parts = []
    scored = results[~results["task"].isin(NOT_SCORED)]
    for task, rows in scored.groupby("task", sort=True):
        metrics = sorted(rows["metric"].unique())
        prefix = FAMILY_METRICS.get(task)
        families = [m for m in metrics if prefix and m.startswith(prefix)]
        if families:
            parts += [_part(rows, task, m, source, f"{task}:{m[len(prefix) :]}") for m in families]
            continue
        metric = primary_metric(task, metrics)
        if metric is None:
            warnings.append(
                f"task {task!r}: metrics {', '.join(metrics)} and none is its primary metric "
                "(see plw.analysis.scores.PRIMARY_METRICS); left out"
            )
            continue
        parts.append(_part(rows, task, metric, source, task))
    # Extra factor columns (train.<path>) travel with the scores: the interaction and surface fits use them.
    extra = [c for c in results.columns if str(c).startswith("train.")]
    if not parts:
        return pd.DataFrame(columns=[*SCORE_COLUMNS, *extra]), warnings
    scores = pd.concat(parts, ignore_index=True)[[*SCORE_COLUMNS, *extra]]
    return scores, warnings


def _part(rows: pd.DataFrame, task: str, metric: str, source: str, benchmark: str) -> pd.DataFrame:
    """The rows of `task`'s `metric`, scored on [0, 1] and labelled as `benchmark`."""
    part = rows[rows["metric"] == metric].copy()
    scale = metric_scale(task, metric)
    part["score"] = part["value"] / scale
    _check_unit_interval(part, source, task, metric, scale)
    part["task"] = benchmark
    return part.rename(columns={"task": "benchmark"})


def _check_unit_interval(part: pd.DataFrame, source: str, task: str, metric: str, scale: float) -> None:
    bad = part["score"].notna() & ((part["score"] < 0) | (part["score"] > 1))
    if bad.any():
        value = part.loc[bad, "value"].iloc[0]
        raise PLWError(
            f"{source}: column 'value' has {value:g} for task {task!r} metric {metric!r}, outside "
            f"[0, {scale:g}] for a scored metric"
        )
