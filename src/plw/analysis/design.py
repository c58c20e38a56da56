"""Turn a table of scores into the data one GLMM fit needs, and say what it cannot estimate.

Every backend fits score ~ w + w^2 (+ model) (+ dataset) + benchmark effect on the same rows:
cells with regularizer `none` (the PLW design proper), non-missing scores, squeezed off {0, 1}.
Nuisance factors are sum-coded so the intercept is the average benchmark / model / dataset, which
makes the population curve the average curve rather than that of an arbitrary reference level. A
study's extra factors (`train.<path>` columns with more than one level) enter the same way, as
nuisance effects; how PLW's curve differs between their levels is `plw.analysis.interaction`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from plw.analysis.results import factor_columns
from plw.analysis.transform import plw_to_w, squeeze

FEW_RESIDUAL_DF = 5  # below this many scores beyond the parameters, a fit's p-values get a warning


class FitLevels:
    """The benchmarks and PLW levels of a fit's rows (`frame`): shared by the aggregate fit's FitData
    and the item-level fit's ItemData (plw.analysis.item_data), which keep the same columns."""

    frame: pd.DataFrame

    @property
    def benchmarks(self) -> list[str]:
        return sorted(self.frame["benchmark"].unique())

    @property
    def plw_levels(self) -> list[float]:
        return sorted(float(v) for v in self.frame["plw"].unique())


@dataclass
class FitData(FitLevels):
    """The rows and design of one fit, plus what the data does not support."""

    label: str
    frame: pd.DataFrame
    """Columns benchmark, model, dataset, plw, w, score, y (squeezed)."""
    exog: pd.DataFrame
    """Fixed-effect design without the benchmark columns (Intercept, w, [w2], model[..], dataset[..])."""
    benchmark_exog: pd.DataFrame
    """Sum-coded benchmark columns (empty when there is one benchmark)."""
    quadratic: bool
    warnings: list[str] = field(default_factory=list)
    not_estimable: list[str] = field(default_factory=list)

    @property
    def fittable(self) -> bool:
        """Whether any PLW term can be estimated."""
        return "PLW effect" not in " ".join(self.not_estimable)


def sum_code(values: pd.Series, name: str) -> pd.DataFrame:
    """Sum (deviation) coding: one column per level but the last, which is -1 on every column.

    Args:
        values: the factor.
        name: prefix of the column names, `name[level]`.

    Returns:
        A float frame with len(levels) - 1 columns (no columns for a single level).
    """
    levels = sorted(values.unique())
    cols = {}
    for level in levels[:-1]:
        cols[f"{name}[{level}]"] = (values == level).astype(float) - (values == levels[-1]).astype(float)
    return pd.DataFrame(cols, index=values.index)


def _missing_cells(frame: pd.DataFrame, keys: list[str]) -> list[str]:
    full = pd.MultiIndex.from_product([sorted(frame[k].unique()) for k in keys], names=keys)
    have = pd.MultiIndex.from_frame(frame[keys].drop_duplicates())
    return [
        ", ".join(f"{k}={v:g}" if k == "plw" else f"{k}={v}" for k, v in zip(keys, combo, strict=True))
        for combo in full.difference(have)
    ]


def _describe_drop(rows: pd.DataFrame) -> str:
    shown = "; ".join(f"{r.benchmark} at PLW {r.plw:g}" for r in rows.head(3).itertuples())
    more = f" and {len(rows) - 3} more" if len(rows) > 3 else ""
    return f"{len(rows)} missing (NaN) score(s) left out: {shown}{more}"


def prepare(scores: pd.DataFrame, label: str, pooled: bool = False) -> FitData:
    """Select, clean and code the rows of one fit.

    Args:
        scores: rows from `select_scores` (any datasets; the caller filters for a per-dataset fit).
        label: the dataset name, or "pooled".
        pooled: add a dataset effect (the pooled fit spans several datasets).

    Returns:
        The FitData; `not_estimable` names each quantity that cannot be estimated and why.
    """
    warnings: list[str] = []
    not_estimable: list[str] = []
    # Regularised cells only enter the regulariser comparison (docs/analysis.md).
    rows = scores[scores["regularizer"] == "none"]
    nan = rows[rows["score"].isna()]
    if len(nan):
        warnings.append(_describe_drop(nan))
    frame = rows[rows["score"].notna()].copy()
    frame["w"] = plw_to_w(frame["plw"].to_numpy())
    frame["y"] = squeeze(frame["score"].to_numpy())
    levels = sorted(frame["plw"].unique())
    benchmarks = sorted(frame["benchmark"].unique())
    extra = [k for k in factor_columns(frame) if frame[k].nunique() > 1]
    keys = ["plw", "benchmark"] + [k for k in ("model", "dataset", *extra) if frame[k].nunique() > 1]
    if len(frame):
        gaps = _missing_cells(frame, keys)
        if gaps:
            warnings.append(
                f"{len(gaps)} combination(s) of {', '.join(keys)} have no score: {'; '.join(gaps[:3])}"
                + (" ..." if len(gaps) > 3 else "")
            )
    if not len(frame):
        not_estimable.append("PLW effect: no usable scores (regularizer 'none', non-missing)")
    elif len(levels) < 2:
        not_estimable.append(f"PLW effect: only one PLW level ({levels[0]:g})")
    elif frame.groupby("benchmark")["score"].nunique().max() == 1:
        # Benchmark effects absorb any between-benchmark differences, so nothing is left for PLW.
        not_estimable.append(
            "PLW effect: scores are constant (within every benchmark, across all PLW levels)"
        )
    quadratic = len(levels) >= 3
    if len(levels) == 2:
        not_estimable.append(
            "quadratic term and critical PLW: only 2 PLW levels (need at least 3); linear fit only"
        )
    if len(benchmarks) == 1:
        not_estimable.append(f"benchmark effect: only one benchmark ({benchmarks[0]}); fitted without it")
    for b, g in frame.groupby("benchmark"):
        if len(g) > 1 and np.ptp(g["score"].to_numpy()) == 0:
            warnings.append(f"benchmark {b!r} has the same score ({g['score'].iloc[0]:g}) in every cell")
    exog, bench = _design(frame, quadratic, pooled)
    n_params = exog.shape[1] + bench.shape[1] + 1
    plw_estimable = not any(m.startswith("PLW effect") for m in not_estimable)
    if len(frame) and len(frame) <= n_params and plw_estimable:
        # A saturated fit interpolates the scores: the beta precision diverges and every standard
        # error collapses, so its p-values would be meaningless.
        not_estimable.append(f"PLW effect: {len(frame)} scores for {n_params} parameters (a saturated fit)")
    elif len(frame) and len(frame) - n_params < FEW_RESIDUAL_DF and plw_estimable:
        warnings.append(
            f"{len(frame)} scores for {n_params} parameters: p-values and intervals rest on "
            f"{len(frame) - n_params} residual degree(s) of freedom; treat them as illustrative"
        )
    return FitData(label, frame, exog, bench, quadratic, warnings, not_estimable)


def _design(frame: pd.DataFrame, quadratic: bool, pooled: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    exog = pd.DataFrame({"Intercept": 1.0, "w": frame["w"].astype(float)}, index=frame.index)
    if quadratic:
        exog["w2"] = frame["w"].astype(float) ** 2
    parts = [exog, sum_code(frame["model"], "model")]
    if pooled:
        parts.append(sum_code(frame["dataset"], "dataset"))
    parts += [sum_code(frame[c].astype(str), c) for c in factor_columns(frame) if frame[c].nunique() > 1]
    return pd.concat(parts, axis=1), sum_code(frame["benchmark"], "benchmark")
