"""The Python backends: a beta regression and a linear mixed model on logit scores (statsmodels).

`statsmodels` (default): statsmodels' BetaModel, logit link, constant precision, with sum-coded
benchmark effects as fixed effects standing in for the paper's random intercept (1 | benchmark).
With a dozen benchmarks and many cells per benchmark the two give nearly the same w and w^2
coefficients; the fixed version cannot shrink benchmark intercepts, which matters little here.

`mixedlm`: a Gaussian linear mixed model (MixedLM, ML rather than REML so likelihoods of the
quadratic and linear models compare) on logit(squeezed score) with a true random intercept per
benchmark. Its coefficients are on the same logit scale as the beta model's.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.othermod.betareg import BetaModel
from statsmodels.regression.linear_model import OLS
from statsmodels.regression.mixed_linear_model import MixedLM

from plw.analysis.design import FitData
from plw.analysis.fit import FitResult
from plw.analysis.transform import expit, logit, squeeze

GRADIENT_TOL = 1e-3
"""Largest acceptable |d loglik / d theta| at the optimum, per observation."""


def _caught_messages(caught) -> list[str]:
    seen: list[str] = []
    for w in caught:
        text = f"{w.category.__name__}: {str(w.message).splitlines()[0]}"
        if text not in seen:
            seen.append(text)
    return seen


def sum_offsets(params: pd.Series, benchmarks: list[str]) -> dict[str, float]:
    """Per-benchmark logit-scale offsets from sum-coded coefficients (the last level is minus the sum)."""
    if len(benchmarks) < 2:
        return {b: 0.0 for b in benchmarks}
    coefs = [float(params[f"benchmark[{b}]"]) for b in benchmarks[:-1]]
    return dict(zip(benchmarks, coefs + [-sum(coefs)], strict=True))


def diagnose(
    optimizer_ok: bool,
    iterations,
    max_grad: float | None,
    hess_ok: bool,
    messages: list[str],
    warnings_fail: bool = False,
) -> tuple[bool, str]:
    """Decide whether a fit converged and say why (not) in one sentence.

    Args:
        optimizer_ok: the optimizer's own convergence flag.
        iterations: its iteration count, or None when unknown.
        max_grad: the largest |gradient| per observation at the optimum, or None when not checked.
        hess_ok: the curvature at the optimum is that of a maximum (finite standard errors).
        messages: warnings raised during the fit.
        warnings_fail: any warning makes the fit not converged (glmmTMB's warnings are about
            convergence; statsmodels' are mostly harmless overflow during line searches).

    Returns:
        (converged, statement).
    """
    parts = [
        f"optimizer {'reported convergence' if optimizer_ok else 'did NOT report convergence'}"
        + (f" after {iterations} iterations" if iterations is not None else ""),
        "Hessian negative definite (standard errors usable)"
        if hess_ok
        else "Hessian NOT negative definite (standard errors unreliable)",
    ]
    if max_grad is not None:
        parts.insert(1, f"largest log-likelihood gradient {max_grad:.1e} per observation")
    grad_ok = max_grad is None or max_grad < GRADIENT_TOL
    ok = optimizer_ok and hess_ok and grad_ok and not (warnings_fail and messages)
    tail = f"; warnings: {' | '.join(messages)}" if messages else ""
    return ok, f"{'converged' if ok else 'did NOT converge cleanly'}: " + "; ".join(parts) + tail


def _beta_fit(y: np.ndarray, x: pd.DataFrame, start=None):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = BetaModel(y, x)
        res = model.fit(start_params=start, method="bfgs", maxiter=2000, disp=False)
        # BFGS stops on a loose gradient tolerance; a few Newton steps polish the optimum.
        res = model.fit(start_params=np.asarray(res.params), method="newton", maxiter=50, disp=False)
    return model, res, _caught_messages(caught)


@dataclass
class BetaFit:
    """A beta regression's mean coefficients (logit scale), their covariance and its diagnostics."""

    params: pd.Series
    cov: pd.DataFrame
    llf: float
    converged: bool
    convergence: str
    messages: list[str]
    res: Any  # statsmodels' results, for p-values and the precision parameter


def beta_fit(y: np.ndarray, x: pd.DataFrame) -> BetaFit:
    """Fit y (in (0, 1)) on the design x [n, k] by beta regression, then check the optimum (`diagnose`)."""
    model, res, messages = _beta_fit(y, x)
    theta = np.asarray(res.params)
    grad = float(np.max(np.abs(model.score(theta)))) / len(y)
    hess_ok = bool(np.all(np.linalg.eigvalsh(model.hessian(theta)) < 0))
    opt_ok = bool(res.mle_retvals.get("converged", False))
    converged, sentence = diagnose(opt_ok, res.mle_retvals.get("iterations"), grad, hess_ok, messages)
    k = x.shape[1]
    cov = pd.DataFrame(np.asarray(res.cov_params())[:k, :k], index=x.columns, columns=x.columns)
    params = pd.Series(theta[:k], index=x.columns)
    return BetaFit(params, cov, float(res.llf), converged, sentence, messages, res)


def fit_beta(
    data: FitData, bootstrap: int = 0, rng: np.random.Generator | None = None, lr_test: bool = True
) -> FitResult:
    """Beta regression (logit link) with sum-coded benchmark fixed effects.

    Args:
        data: from `design.prepare`, with a fittable PLW effect.
        bootstrap: parametric bootstrap replicates of (b1, b2) (0 for none).
        rng: random generator for the bootstrap.
        lr_test: also fit the model without w^2 for the likelihood-ratio test (power simulations,
            which use the Wald test, skip it and halve their cost).

    Returns:
        The FitResult; params and cov cover the non-benchmark fixed effects.
    """
    x = pd.concat([data.exog, data.benchmark_exog], axis=1)
    y = data.frame["y"].to_numpy()
    full = beta_fit(y, x)
    res, theta = full.res, np.asarray(full.res.params)
    names = list(data.exog.columns)
    params, cov = full.params, full.cov
    pvalues = pd.Series(np.asarray(res.pvalues)[: x.shape[1]], index=x.columns)
    fit = FitResult(
        backend="statsmodels",
        params=params[names],
        cov=cov.loc[names, names],
        pvalues=pvalues[names],
        benchmark_offsets=sum_offsets(params, data.benchmarks),
        converged=full.converged,
        convergence=full.convergence,
        loglik=full.llf,
        extra={"precision_phi": float(np.exp(theta[-1]))},
        messages=full.messages,
    )
    if data.quadratic and lr_test:
        _, res0, _ = _beta_fit(y, x.drop(columns=["w2"]))
        fit.lr_stat = float(2 * (res.llf - res0.llf))
    if bootstrap and data.quadratic:
        fit.boot, fit.boot_requested = (
            _beta_bootstrap(x, theta, bootstrap, rng or np.random.default_rng(0)),
            bootstrap,
        )
    return fit


def _beta_bootstrap(x: pd.DataFrame, theta: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Simulate scores from the fitted beta model, squeeze and refit; keep (b1, b2) of converged refits."""
    mu = expit(x.to_numpy() @ theta[: x.shape[1]])
    phi = float(np.exp(theta[-1]))
    iw, iw2 = x.columns.get_loc("w"), x.columns.get_loc("w2")
    reps = []
    for _ in range(n):
        y_star = squeeze(rng.beta(mu * phi, (1 - mu) * phi))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = BetaModel(y_star, x).fit(start_params=theta, method="bfgs", maxiter=500, disp=False)
        p = np.asarray(res.params)
        if res.mle_retvals.get("converged", False) and np.all(np.isfinite(p)):
            reps.append((p[iw], p[iw2]))
    return np.array(reps, dtype=float).reshape(-1, 2)


def _lmm_fit(ly: np.ndarray, x: pd.DataFrame, groups: pd.Series | None):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # One benchmark has no between-benchmark variance to estimate: ordinary least squares.
        res = OLS(ly, x).fit() if groups is None else MixedLM(ly, x, groups=groups.to_numpy()).fit(reml=False)
    return res, _caught_messages(caught)


def fit_mixedlm(data: FitData, bootstrap: int = 0, rng: np.random.Generator | None = None) -> FitResult:
    """Linear mixed model on logit(squeezed score) with a random intercept per benchmark (ML).

    With a single benchmark there is no random effect to estimate, so it falls back to OLS.
    """
    ly = logit(data.frame["y"].to_numpy())
    x = data.exog
    groups = data.frame["benchmark"] if len(data.benchmarks) > 1 else None
    res, messages = _lmm_fit(ly, x, groups)
    names = list(x.columns)
    cov = pd.DataFrame(
        np.asarray(res.cov_params()), index=res.cov_params().index, columns=res.cov_params().columns
    )
    if groups is None:
        offsets, re_var, opt_ok = {b: 0.0 for b in data.benchmarks}, 0.0, True
    else:
        offsets = {str(g): float(np.asarray(v)[0]) for g, v in res.random_effects.items()}
        re_var, opt_ok = float(np.asarray(res.cov_re)[0, 0]), bool(res.converged)
    sub = cov.loc[names, names]
    hess_ok = bool(np.all(np.isfinite(sub.to_numpy())) and np.all(np.linalg.eigvalsh(sub.to_numpy()) > 0))
    if groups is not None and re_var < 1e-8:
        messages.append("benchmark variance estimated at 0 (boundary): the random intercept is not supported")
    converged, sentence = diagnose(opt_ok, None, None, hess_ok, messages)
    fit = FitResult(
        backend="mixedlm",
        params=res.params[names].astype(float),
        cov=sub,
        pvalues=res.pvalues[names].astype(float),
        benchmark_offsets=offsets,
        converged=converged,
        convergence=sentence,
        loglik=float(res.llf),
        extra={"benchmark_variance": re_var, "residual_variance": float(res.scale)},
        messages=messages,
    )
    if data.quadratic:
        res0, _ = _lmm_fit(ly, x.drop(columns=["w2"]), groups)
        fit.lr_stat = float(2 * (res.llf - res0.llf))
    if bootstrap and data.quadratic:
        fit.boot = _lmm_bootstrap(data, fit, groups, bootstrap, rng or np.random.default_rng(0))
        fit.boot_requested = bootstrap
    return fit


def _lmm_bootstrap(data: FitData, fit: FitResult, groups, n: int, rng: np.random.Generator) -> np.ndarray:
    """Simulate logit scores from the fitted mixed model (new benchmark effects each time) and refit."""
    x = data.exog
    fixed = x.to_numpy() @ fit.params.to_numpy()
    codes = pd.factorize(data.frame["benchmark"])[0]
    sd_re, sd_e = np.sqrt(fit.extra["benchmark_variance"]), np.sqrt(fit.extra["residual_variance"])
    reps = []
    for _ in range(n):
        u = rng.normal(0, sd_re, codes.max() + 1)[codes] if groups is not None else 0.0
        ly_star = fixed + u + rng.normal(0, sd_e, len(fixed))
        res, _ = _lmm_fit(ly_star, x, groups)
        ok = groups is None or bool(res.converged)
        if ok and np.isfinite(res.params["w2"]):
            reps.append((float(res.params["w"]), float(res.params["w2"])))
    return np.array(reps, dtype=float).reshape(-1, 2)


BACKENDS = {"statsmodels": fit_beta, "mixedlm": fit_mixedlm}
"""Python backends by name; `glmmtmb` lives in plw.analysis.glmmtmb."""
