"""The backend-neutral result of one GLMM fit, and what is derived from it.

Every backend (statsmodels beta regression, MixedLM on logit scores, R's glmmTMB) returns a
`FitResult` with the fixed effects on the logit scale, their covariance, per-benchmark offsets and
bootstrap replicates of (b1, b2); the quadratic test, critical PLW, its intervals and the fitted
curves are computed from it here, identically for every backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from plw.analysis.transform import critical_plw, expit, vertex, w_interval_to_plw, w_to_plw

Z95 = float(stats.norm.ppf(0.975))
MIN_BOOTSTRAP = 20
"""Fewer converged replicates than this and `critical_plw_ci` falls back to the delta method."""


@dataclass
class FitResult:
    """Fixed effects (logit scale) of one fit, with diagnostics and bootstrap replicates."""

    backend: str
    params: pd.Series
    cov: pd.DataFrame
    pvalues: pd.Series
    benchmark_offsets: dict[str, float]
    converged: bool
    convergence: str
    """A plain-language statement of the convergence checks."""
    loglik: float = float("nan")
    lr_stat: float | None = None
    """Likelihood-ratio statistic of the quadratic term (2 * (llf - llf without w2))."""
    extra: dict = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    boot: np.ndarray | None = None
    """Bootstrap replicates of (b1, b2), one row each (converged replicates only)."""
    boot_requested: int = 0

    @property
    def bse(self) -> pd.Series:
        return pd.Series(np.sqrt(np.clip(np.diag(self.cov.to_numpy()), 0, None)), index=self.cov.index)


def coefficient_table(fit: FitResult) -> dict:
    """{name: {estimate, std_error, z, p_value}} for every fixed effect."""
    bse = fit.bse
    out = {}
    for name, est in fit.params.items():
        se = float(bse.get(name, np.nan))
        out[name] = {
            "estimate": float(est),
            "std_error": se,
            "z": float(est / se) if se > 0 else None,
            "p_value": float(fit.pvalues.get(name, np.nan)),
        }
    return out


def quadratic_test(fit: FitResult, alpha: float = 0.05) -> dict:
    """The headline: the w^2 coefficient, its Wald test and (when available) likelihood-ratio test.

    A significant negative w^2 means scores peak at an interior PLW, i.e. PLW matters.
    """
    est = float(fit.params["w2"])
    se = float(fit.bse["w2"])
    p = float(fit.pvalues["w2"])
    lr_p = float(stats.chi2.sf(fit.lr_stat, 1)) if fit.lr_stat is not None and fit.lr_stat >= 0 else None
    return {
        "estimate": est,
        "std_error": se,
        "z": est / se if se > 0 else None,
        "p_value": p,
        "lr_stat": fit.lr_stat,
        "lr_p_value": lr_p,
        "significant": bool(np.isfinite(p) and p < alpha),
        "negative": est < 0,
    }


def delta_interval(fit: FitResult) -> tuple[float, float, float]:
    """The vertex on the w scale, its delta-method standard error, and the normal quantile used."""
    b1, b2 = float(fit.params["w"]), float(fit.params["w2"])
    if b2 == 0:
        return float("nan"), float("nan"), Z95
    v = fit.cov.loc[["w", "w2"], ["w", "w2"]].to_numpy()
    grad = np.array([-1.0 / (2 * b2), b1 / (2 * b2**2)])
    se = float(np.sqrt(max(grad @ v @ grad, 0.0)))
    return vertex(b1, b2), se, Z95


def critical(fit: FitResult, observed: tuple[float, float]) -> dict:
    """Critical PLW with delta-method and percentile-bootstrap 95% intervals.

    `critical_plw_ci` is the bootstrap interval when there are at least MIN_BOOTSTRAP converged
    replicates (the vertex is a ratio of coefficients, skewed, which the percentile interval
    respects), else the delta-method interval.
    """
    b1, b2 = float(fit.params["w"]), float(fit.params["w2"])
    out = critical_plw(b1, b2, observed)
    w_star, se, z = delta_interval(fit)
    delta = (
        w_interval_to_plw(w_star - z * se, w_star + z * se)
        if np.isfinite(w_star) and np.isfinite(se)
        else None
    )
    out["critical_plw_ci_delta"] = delta
    out["critical_plw_ci_bootstrap"] = None
    out["bootstrap"] = {"requested": fit.boot_requested, "converged": 0, "share_convex": None}
    if fit.boot is not None and len(fit.boot):
        reps = np.array([vertex(a, b) for a, b in fit.boot])
        reps = np.clip(reps[np.isfinite(reps)], 0.0, 1.0)
        if len(reps):
            lo, hi = np.quantile(reps, [0.025, 0.975])
            out["critical_plw_ci_bootstrap"] = [float(w_to_plw(lo)), float(w_to_plw(hi))]
        out["bootstrap"] = {
            "requested": fit.boot_requested,
            "converged": int(len(fit.boot)),
            "share_convex": float(np.mean(fit.boot[:, 1] >= 0)),
        }
    boot = out["critical_plw_ci_bootstrap"]
    if boot is not None and len(fit.boot) < MIN_BOOTSTRAP:
        boot = None  # too few replicates for 2.5% / 97.5% quantiles; still reported separately
    out["critical_plw_ci"] = boot if boot is not None else delta
    out["critical_plw_ci_method"] = "bootstrap" if boot is not None else ("delta" if delta else None)
    return out


def curve(fit: FitResult, w: np.ndarray, benchmark: str | None = None) -> dict:
    """The fitted score (response scale) on a grid of w, with a pointwise 95% band.

    The band covers the uncertainty of intercept, w and w^2 (delta method on the logit scale, then
    mapped through the inverse logit); a benchmark's offset is added as a fixed shift.
    """
    names = [n for n in ("Intercept", "w", "w2") if n in fit.params.index]
    x = np.column_stack([np.ones_like(w), w, w**2][: len(names)])
    eta = x @ fit.params[names].to_numpy()
    if benchmark is not None:
        eta = eta + fit.benchmark_offsets.get(benchmark, 0.0)
    v = fit.cov.loc[names, names].to_numpy()
    se = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", x, v, x), 0, None))
    return {
        "w": w.tolist(),
        "plw": np.asarray(w_to_plw(w)).tolist(),
        "fit": expit(eta).tolist(),
        "lo": expit(eta - Z95 * se).tolist(),
        "hi": expit(eta + Z95 * se).tolist(),
    }
