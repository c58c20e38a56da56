"""Power of a study design to detect the paper's quadratic PLW effect, by simulation.

A simulated study draws one score per (cell, benchmark) from the model `plw analyze` fits, with a
known curve, and is analysed with the same code (`design.prepare`, the statsmodels beta fit, the
Wald test of w^2, the delta-method critical-PLW interval). Over many simulated studies:

    power     P(w^2 significant at alpha and negative)  -- the paper's claim has a direction
    width     median width of the critical-PLW 95% interval (PLW scale), over detected studies
    coverage  P(the interval contains the true critical PLW)
    mde80     the smallest |curvature| detected with 80% power

Scores: logit E[y] = logit_b + a (w - w0)^2 for benchmark b, y ~ Beta(mu phi_b, (1 - mu) phi_b).
The precision follows the benchmark's item count n_b: an accuracy over n items has variance
mu (1 - mu) / n, a beta variable mu (1 - mu) / (1 + phi), so 1 / (1 + phi_b) = 1 / n_b + extra, where
`extra` is the between-cell variation that items do not explain (seeds, training noise), as a share of
mu (1 - mu). A pilot's effect instead carries the pilot's own residual precision (`residual`), used
as it is whatever the items: a real study scores every cell on the same items, so its residual is
mostly not item sampling, and a pilot cannot tell how much of it more items would remove.
Each dataset of a study is fitted on its own (as `plw analyze` does), so power is that of
one per-dataset fit. Items are redrawn per cell here, while a real study scores every cell on the same
items; that makes these figures conservative for the item part of the noise.
"""

from __future__ import annotations

import math
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import special, stats

from plw.analysis.design import prepare
from plw.analysis.fit import critical, quadratic_test
from plw.analysis.glmm import fit_beta
from plw.analysis.transform import expit, plw_to_w, w_to_plw

Z80 = float(stats.norm.ppf(0.8))


@dataclass(frozen=True)
class Effect:
    """The assumed truth: a curve on the logit scale and the noise around it.

    Attributes:
        curvature: a in a (w - vertex_w)^2; negative is a peak (the paper's claim), 0 is no effect.
        vertex_w: the peak on the w = PLW ** log10(2) scale (0.652 is PLW 0.242).
        logits: logit of each benchmark's mean score at the peak; benchmarks not listed use `default_logit`.
        default_logit: see `logits`.
        extra: between-cell variance beyond item sampling, as a share of mu (1 - mu).
        residual: a fitted residual share 1 / (1 + phi) that replaces the item-based precision
            (pilot effects); None: precision from items and `extra`.
        source: where these numbers come from (printed with the result).
    """

    curvature: float
    vertex_w: float = 0.652
    logits: dict[str, float] = field(default_factory=dict)
    default_logit: float = 0.0
    extra: float = 0.0
    residual: float | None = None
    source: str = ""

    @property
    def critical_plw(self) -> float:
        return float(w_to_plw(min(max(self.vertex_w, 0.0), 1.0)))


PAPER_EFFECT = Effect(
    curvature=-4.284,
    vertex_w=0.652,
    default_logit=0.781,
    extra=0.0,
    source=(
        "arXiv 2401.13586, AlpacaDataShort: -4.284 (w - 0.652)^2 + 0.781 on the logit scale (critical PLW "
        "0.242); its benchmark spread and residual precision are not in our sources, so every benchmark "
        "sits at 0.781 and only item sampling adds noise (optimistic: see docs/replication.md)"
    ),
)


@dataclass(frozen=True)
class Design:
    """What a study varies, per dataset fit: PLW levels, seeds, models, and items per benchmark."""

    plw: tuple[float, ...]
    seeds: int
    items: dict[str, int]
    models: int = 1
    cell_seconds: float | None = None
    """Estimated wall time of one cell (None: unknown); see plw.experiment.power_design."""

    @property
    def cells(self) -> int:
        """Cells per dataset."""
        return len(self.plw) * self.seeds * self.models


def phi_of(items: int, extra: float) -> float:
    """Beta precision of a score over `items` items plus between-cell variance `extra`."""
    return max(1.0 / (1.0 / items + extra) - 1.0, 1.0)


def _means(design: Design, effect: Effect) -> pd.DataFrame:
    """One row per (cell, benchmark) with the true mean `mu` and precision `phi`."""
    rows = []
    for model in range(design.models):
        for seed in range(design.seeds):
            for plw in design.plw:
                w = float(plw_to_w(plw))
                for bench, n in design.items.items():
                    eta = (
                        effect.logits.get(bench, effect.default_logit)
                        + effect.curvature * (w - effect.vertex_w) ** 2
                    )
                    phi = phi_of(n, effect.extra) if effect.residual is None else 1 / effect.residual - 1
                    rows.append((f"m{model}", seed, plw, bench, float(expit(eta)), phi))
    return pd.DataFrame(rows, columns=["model", "seed", "plw", "benchmark", "mu", "phi"])


def simulate_scores(design: Design, effect: Effect, rng: np.random.Generator) -> pd.DataFrame:
    """A table of scores shaped like `plw.analysis.scores.select_scores` output, for one dataset."""
    frame = _means(design, effect)
    mu, phi = frame["mu"].to_numpy(), frame["phi"].to_numpy()
    frame["score"] = rng.beta(mu * phi, (1 - mu) * phi)
    frame["dataset"], frame["regularizer"] = "sim", "none"
    return frame


def analyse_once(scores: pd.DataFrame, alpha: float, true_plw: float) -> dict:
    """The analysis `plw analyze` runs on one per-dataset table, reduced to what power needs."""
    data = prepare(scores, "sim")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_beta(data, lr_test=False)
    quad = quadratic_test(fit, alpha)
    crit = critical(fit, (min(data.plw_levels), max(data.plw_levels)))
    ci = crit["critical_plw_ci_delta"]
    return {
        "detected": quad["significant"] and quad["negative"],
        "b2": quad["estimate"],
        "se": quad["std_error"],
        "width": (ci[1] - ci[0]) if ci else math.nan,
        "covers": bool(ci and ci[0] <= true_plw <= ci[1]),
    }


def _batch(args: tuple) -> list[dict]:
    design, effect, alpha, seeds = args
    return [
        analyse_once(simulate_scores(design, effect, np.random.default_rng(s)), alpha, effect.critical_plw)
        for s in seeds
    ]


def simulate_power(
    design: Design, effect: Effect, n_sims: int = 200, alpha: float = 0.05, seed: int = 0, workers: int = 1
) -> dict:
    """Simulate `n_sims` studies of `design` under `effect` and analyse each.

    Args:
        workers: processes (fits are independent; 2 on a 2-core machine halves the time).

    Returns:
        {power, power_se, width_median, coverage, se_b2_median, mde80, n_sims}.
    """
    streams = np.random.SeedSequence(seed).spawn(n_sims)
    chunks = [(design, effect, alpha, streams[i::workers]) for i in range(max(workers, 1))]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            runs = [r for part in pool.map(_batch, chunks) for r in part]
    else:
        runs = _batch(chunks[0])
    table = pd.DataFrame(runs)
    power = float(table["detected"].mean())
    detected = table.loc[table["detected"], "width"].dropna()
    se = float(np.nanmedian(table["se"]))
    return {
        "power": power,
        "power_se": math.sqrt(power * (1 - power) / n_sims),
        "width_median": float(detected.median()) if len(detected) else None,
        "coverage": float(table["covers"].mean()),
        "se_b2_median": se,
        "mde80": mde(se, alpha),
        "n_sims": n_sims,
    }


def mde(se_b2: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest |curvature| a Wald test with this standard error detects with `power` (normal approx)."""
    return float((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * se_b2)


def expected_se_b2(design: Design, effect: Effect) -> float:
    """Standard error of the w^2 coefficient from the beta model's expected Fisher information.

    Mean parameters only, precision known per score (Ferrari & Cribari-Neto 2004, logit link):
    I = X' diag(phi^2 [psi'(mu phi) + psi'((1 - mu) phi)] (mu (1 - mu))^2) X. No simulation, so a
    design search can cost thousands of candidates; `simulate_power` checks the chosen one.
    """
    frame = _means(design, effect)
    w = plw_to_w(frame["plw"].to_numpy())
    bench = pd.get_dummies(frame["benchmark"], dtype=float).to_numpy()[:, 1:]
    model = pd.get_dummies(frame["model"], dtype=float).to_numpy()[:, 1:]
    x = np.column_stack([np.ones_like(w), w, w**2, bench, model])
    mu, phi = frame["mu"].to_numpy(), frame["phi"].to_numpy()
    trigamma = special.polygamma(1, mu * phi) + special.polygamma(1, (1 - mu) * phi)
    weight = phi**2 * trigamma * (mu * (1 - mu)) ** 2
    info = x.T @ (x * weight[:, None])
    return float(np.sqrt(np.linalg.pinv(info)[2, 2]))


def approximate_power(design: Design, effect: Effect, alpha: float = 0.05) -> float:
    """Power of the negative-curvature test from `expected_se_b2` (normal approximation)."""
    z = abs(effect.curvature) / expected_se_b2(design, effect)
    sign = 1.0 if effect.curvature < 0 else -1.0
    return float(stats.norm.cdf(sign * z - stats.norm.ppf(1 - alpha / 2)))


def with_curvature(effect: Effect, curvature: float) -> Effect:
    """The same effect with another curvature (for power curves and the MDE check)."""
    return replace(effect, curvature=curvature)
