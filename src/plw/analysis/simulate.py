"""Simulated results tables with a known PLW curve, for tests, demos and checking the analysis.

Scores follow the model the analysis fits: on the logit scale, a quadratic in w = PLW ** log10(2)
peaking at w = `peak_w`, plus a normal random intercept per benchmark, with beta noise of precision
`phi` around the mean. Mechanism measures (task `train`) and retention follow simple smooth trends.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from plw.analysis.transform import expit, plw_to_w

PAPER_PLW_LEVELS = (0.0, 5e-4, 2.236e-3, 1e-2, 2.463e-2, 5e-2, 1e-1, 2.463e-1, 5e-1, 1.0)
"""The ten PLW levels of the paper's main design."""

BENCHMARKS = (
    "arc_challenge",
    "arc_easy",
    "piqa",
    "winogrande",
    "truthfulqa_mc2",
    "truthfulqa_gen",
    "wmt14-en-fr",
    "wmt16-de-en",
    "alpaca_eval",
    "synthetic_exact_match",
)
METRIC_OF = {
    "arc_challenge": "acc_norm",
    "arc_easy": "acc_norm",
    "piqa": "acc_norm",
    "winogrande": "acc",
    "truthfulqa_mc2": "acc",
    "truthfulqa_gen": "bleu_acc",
    "alpaca_eval": "win_rate",
    "synthetic_exact_match": "exact_match",
}


def _cell(plw, model, dataset, seed, reg) -> str:
    return f"plw={plw:g},model={model},dataset={dataset},seed={seed},reg={reg}"


def simulate_results(
    plw_levels=PAPER_PLW_LEVELS,
    n_benchmarks: int = 8,
    datasets=("synthetic",),
    models=("tiny",),
    seeds=(0,),
    curvature: float = -1.5,
    peak_w: float = 0.652,
    peak_logit: float = 0.3,
    sd_benchmark: float = 0.6,
    phi: float = 400.0,
    regularizers=(),
    seed: int = 0,
    benchmark_seed: int | None = None,
) -> pd.DataFrame:
    """A results table (docs/results-schema.md) drawn from a known quadratic.

    Args:
        plw_levels: PLW values of the design.
        n_benchmarks: how many of BENCHMARKS to use (cycled with a suffix beyond ten).
        datasets, models, seeds: factor levels, fully crossed.
        curvature: the w^2 coefficient a of a (w - peak_w)^2 on the logit scale.
        peak_w: the true vertex on the w scale (0.652 is PLW 0.242, the paper's optimum).
        peak_logit: the logit of the average benchmark's score at the peak.
        sd_benchmark: standard deviation of the benchmark intercepts (logit scale).
        phi: beta precision; larger is less noise.
        regularizers: extra `name=value` regularisers, each run at PLW 0 and 1 (score shifted down).
        seed: random seed.
        benchmark_seed: draw the benchmark intercepts from this seed instead (tables simulated
            apart then share their benchmarks, as the levels of one study do).

    Returns:
        The table with scored tasks, `train` mechanism measures and `retention`.
    """
    rng = np.random.default_rng(seed)
    names = [
        BENCHMARKS[i % len(BENCHMARKS)] + (f"_{i // len(BENCHMARKS)}" if i >= len(BENCHMARKS) else "")
        for i in range(n_benchmarks)
    ]
    draw = rng if benchmark_seed is None else np.random.default_rng(benchmark_seed)
    offsets = dict(zip(names, draw.normal(0, sd_benchmark, len(names)), strict=True))
    runs = [(p, m, d, s, "none") for d in datasets for m in models for s in seeds for p in plw_levels]
    runs += [
        (p, m, d, s, r)
        for d in datasets
        for m in models
        for s in seeds
        for r in regularizers
        for p in (0.0, 1.0)
    ]
    rows = []
    for plw, model, dataset, s, reg in runs:
        cell = _cell(plw, model, dataset, s, reg)
        w = plw_to_w(plw)
        shift = -0.15 if reg != "none" else 0.0
        base = dict(study="sim", cell=cell, model=model, dataset=dataset, plw=plw, seed=s, regularizer=reg)
        for b in names:
            mu = float(expit(peak_logit + offsets[b] + curvature * (w - peak_w) ** 2 + shift))
            y = rng.beta(mu * phi, (1 - mu) * phi)
            metric, scale = _metric(b)
            rows.append({**base, "task": b, "metric": metric, "value": y * scale, "stderr": 0.01 * scale})
        rows += _train_rows(base, plw, w, rng)
    return pd.DataFrame(rows)


def _metric(benchmark: str) -> tuple[str, float]:
    if benchmark.startswith("wmt"):
        return "bleu", 100.0
    return METRIC_OF.get(benchmark.split("_")[0] if benchmark not in METRIC_OF else benchmark, "acc"), 1.0


def _train_rows(base: dict, plw: float, w: float, rng: np.random.Generator) -> list[dict]:
    """Mechanism measures shaped like the paper's findings, plus retention NLL."""
    dist = 0.02 + 0.03 * w + rng.normal(0, 0.002)
    measures = {
        "weight_l2": 40 * dist,
        "weight_rel_distance": dist,
        "loss_rsd": 0.3 - 0.15 * w + 0.1 * (0 < plw < 0.1) + rng.normal(0, 0.01),
        "memorization_bleu": 80 - 40 * max(w - 0.5, 0) + rng.normal(0, 1),
    }
    rows = [{**base, "task": "train", "metric": k, "value": v, "stderr": np.nan} for k, v in measures.items()]
    rows.append(
        {
            **base,
            "task": "retention",
            "metric": "nll",
            "value": 2.0 + 0.3 * w + rng.normal(0, 0.02),
            "stderr": np.nan,
        }
    )
    return rows


def simulate_factor_results(factor: str, levels: dict, seed: int = 0, **common) -> pd.DataFrame:
    """A results table with an extra factor column whose levels each follow their own curve.

    Args:
        factor: the column, `train.<path>` (e.g. `train.learning_rate`).
        levels: level value -> `simulate_results` keyword arguments for that level (e.g. its `peak_w`,
            or a `peak_logit` that makes a surface over the level).
        seed: random seed; each level draws its own noise, and all share the benchmark intercepts.
        common: keyword arguments shared by every level.

    Returns:
        The concatenated table; cells carry the level in their id.
    """
    parts = []
    for index, (level, kw) in enumerate(levels.items()):
        part = simulate_results(**{**common, **kw, "seed": seed * 1000 + index + 1, "benchmark_seed": seed})
        part[factor] = level
        part["cell"] = part["cell"] + f",{factor.removeprefix('train.')}={level}"
        parts.append(part)
    return pd.concat(parts, ignore_index=True)
