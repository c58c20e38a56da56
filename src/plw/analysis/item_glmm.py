"""The item-level model of `plw analyze`: every item response of every model, crossed random intercepts.

The aggregate fit (`plw.analysis.glmm`) sees one score per cell x benchmark; here the data are the
responses themselves, one row per cell x benchmark x item, and the model is

    binomial (0/1 outcomes, lme4 glmer nAGQ = 1):  logit P(y = 1) = X beta + u_item + v_cell (+ s_seed)
    gaussian (continuous outcomes, lmer REML = FALSE): y = X beta + u_item + v_cell (+ s_seed) + e

with u ~ N(0, item_sd^2) per benchmark item, v ~ N(0, cell_sd^2) per trained model and, with two or
more seeds, s ~ N(0, seed_sd^2) per seed (`(1 | seed)`). X holds Intercept, w, w2 (w = PLW **
log10(2)), and sum-coded benchmark, model and dataset effects when they vary, named as the aggregate
fit names them. The cell intercept is what separates training noise (models trained alike that still
differ) from the PLW effect: with thousands of items per cell, the binomial noise in a cell's mean
is small, so the PLW terms are tested against how much cells scatter around the curve.

P-values of the cell-level terms (Intercept, w, w2, model, dataset) use a t reference with
df_cell = n_cells - (number of cell-level fixed effects) degrees of freedom, not the normal: those
terms are identified by a handful of cells, and the Wald z test with an ML cell sd rejects a true
w2 = 0 too often when cells scatter. Simulated (300 studies each; 6 PLW levels, 2 benchmarks x 50
items, item sd 1.5), rejection of a true w2 = 0 at the 5% level, z / t:

    12 cells (2 seeds), cell sd 0.1:   5.3% / 3.0%    (95% interval covers w2 = -1: 95.3% / 97.3%)
    12 cells (2 seeds), cell sd 0.3:  11.0% / 6.7%    (88.3% / 93.3%)
     6 cells (1 seed),  cell sd 0.3:  10.3% / 2.3%    (87.0% / 98.0%)

So the t reference is conservative when the items' binomial noise dominates and still slightly
liberal when the cells' own scatter dominates (the ML cell variance is biased low, as in lme4, which
has no REML for GLMMs). With no cell-level degree of freedom left the p-values are NaN and the
quadratic test is not estimable. Standard errors, curves and the delta-method interval of the
critical PLW are the Wald ones.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
from scipy import stats

from plw.analysis.design import FitData
from plw.analysis.fit import Z95, FitResult
from plw.analysis.glmm import sum_offsets
from plw.analysis.item_data import ItemData, prepare_items
from plw.analysis.item_gaussian import fit_gaussian
from plw.analysis.item_laplace import fit_binomial
from plw.analysis.transform import w_to_plw

BACKEND = "item_glmm"
VARIANCE_KEYS = ("item_sd", "cell_sd", "seed_sd", "residual_sd")


def _one_blas_thread():
    """Run BLAS single-threaded: the fit makes thousands of tiny (m x m) LAPACK calls, and a threaded
    BLAS on a busy machine waits for descheduled threads on each (measured 8x slower on 2 loaded cores).
    threadpoolctl is optional; without it the fit runs with the BLAS defaults."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1)


def _fit(data: ItemData, x: pd.DataFrame):
    fit_fn = fit_binomial if data.family == "binomial" else fit_gaussian
    with _one_blas_thread():
        return fit_fn(data.y, x.to_numpy(), data.crossed)


def _pvalues(params: pd.Series, se: pd.Series, cell_terms: list[str], df: int) -> pd.Series:
    z = (params / se).to_numpy()
    p = 2 * stats.norm.sf(np.abs(z))
    for j, name in enumerate(params.index):
        if name in cell_terms:
            p[j] = 2 * stats.t.sf(abs(z[j]), df) if df > 0 else np.nan
    return pd.Series(p, index=params.index)


def fit_items(
    frame: pd.DataFrame, family: str = "binomial", label: str = "pooled", lr_test: bool = True
) -> FitResult:
    """Fit the item-level model to an item frame.

    Args:
        frame: columns cell, plw, benchmark, item, value (and model, dataset, seed, regularizer,
            metric; missing ones default as in `prepare_items`); one row per cell x benchmark x item.
        family: "binomial" (values 0/1) or "gaussian".
        label: the fit's name (a dataset, or "pooled").
        lr_test: also fit the model without w2 for the likelihood-ratio statistic.

    Returns:
        A FitResult (backend "item_glmm"): params / cov / pvalues over the non-benchmark effects,
        benchmark offsets, loglik, lr_stat, and in `extra` the variance components (item_sd,
        cell_sd, seed_sd, residual_sd for gaussian), n_items, n_cells, n_seeds, df_cell, family.

    Raises:
        ValueError: an unknown family, a missing required column, or data that cannot be fitted
            (`analyze_items` turns the last into `not_estimable` instead).
    """
    data = prepare_items(frame, family, label)
    if not data.fittable:
        raise ValueError("not estimable: " + "; ".join(data.not_estimable))
    return _fit_result(data, lr_test)


def _fit_result(data: ItemData, lr_test: bool) -> FitResult:
    x = pd.concat([data.exog, data.benchmark_exog], axis=1)
    full = _fit(data, x)
    names = list(data.exog.columns)
    params = pd.Series(full.beta, index=x.columns)
    cov = pd.DataFrame(full.cov, index=x.columns, columns=x.columns).loc[names, names]
    se = pd.Series(np.sqrt(np.clip(np.diag(cov.to_numpy()), 0, None)), index=names)
    sds = [float(v) for v in full.sd] + [None]  # seed_sd None: one seed, no seed term
    extra = {
        "family": data.family,
        "item_sd": sds[0],
        "cell_sd": sds[1],
        "seed_sd": sds[2],
        "residual_sd": full.residual_sd,
        "n_items": data.crossed.n_item,
        "n_cells": data.n_cells,
        "n_seeds": data.n_seeds,
        "df_cell": data.df_cell,
        "p_value_reference": f"t({data.df_cell}) for cell-level terms" if data.df_cell > 0 else "none",
    }
    fit = FitResult(
        backend=BACKEND,
        params=params[names],
        cov=cov,
        pvalues=_pvalues(params[names], se, data.cell_terms, data.df_cell),
        benchmark_offsets=sum_offsets(params, data.benchmarks),
        converged=full.converged,
        convergence=full.convergence,
        loglik=full.loglik,
        extra=extra,
        messages=full.messages,
    )
    if data.quadratic and lr_test:
        fit.lr_stat = float(2 * (full.loglik - _fit(data, x.drop(columns=["w2"])).loglik))
    return fit


def fit_data(data: ItemData) -> FitData:
    """The FitData view of an ItemData that `plw.analysis.summary` reports from (score = value)."""
    frame = data.frame.assign(score=data.frame["value"])
    return FitData(
        data.label, frame, data.exog, data.benchmark_exog, data.quadratic, data.warnings, data.not_estimable
    )


def analyze_items(frame: pd.DataFrame, label: str = "pooled", family: str = "binomial") -> dict:
    """Fit the item-level model and report it as `summary.analyze_fit` reports the aggregate fit.

    Returns:
        The JSON-ready per-fit dict of `analyze_fit` (label, backend "item_glmm", n_obs = item
        responses, plw_levels, benchmarks, models, datasets, means_by_plw, coefficients,
        benchmark_effects, quadratic, p_value, critical_plw and its intervals (delta method),
        curve, benchmark_curves, converged, convergence, fit_details, warnings, not_estimable,
        verdict) plus family, n_items, n_cells, n_seeds and variance_components (item_sd,
        cell_sd, seed_sd, residual_sd). Data that cannot be fitted give `not_estimable` reasons,
        never an exception; gaussian curves are on the outcome's own scale (identity link).
    """
    # Imported here: summary is the module that will call this one (a top-level import would cycle).
    from plw.analysis.summary import CURVE_POINTS, _base, _fill, to_jsonable
    from plw.analysis.verdict import verdict

    data = prepare_items(frame, family, label)
    view = fit_data(data)
    out = _base(view, BACKEND)
    out.update(
        family=family, n_items=None, n_cells=data.n_cells, n_seeds=data.n_seeds, variance_components=None
    )
    if data.fittable:
        try:
            fit = _fit_result(data, lr_test=True)
        except (np.linalg.LinAlgError, ValueError, ZeroDivisionError, FloatingPointError) as err:
            out["not_estimable"].append(f"model fit failed ({type(err).__name__}: {err})")
        else:
            _fill(out, view, fit)
            out["n_items"] = fit.extra["n_items"]
            out["variance_components"] = {k: fit.extra[k] for k in VARIANCE_KEYS}
            if family == "gaussian":
                grid = np.linspace(0.0, 1.0, CURVE_POINTS)
                out["curve"] = identity_curve(fit, grid)
                out["benchmark_curves"] = {b: identity_curve(fit, grid, b) for b in data.benchmarks}
            if data.df_cell <= 0:
                out.update(quadratic=None, p_value=None)  # no test: see not_estimable
    out["verdict"] = verdict(out)
    return to_jsonable(out)


def identity_curve(fit: FitResult, w: np.ndarray, benchmark: str | None = None) -> dict:
    """`fit.curve` for an identity link: fitted outcome on a grid of w [k] with a pointwise 95% band."""
    names = [n for n in ("Intercept", "w", "w2") if n in fit.params.index]
    x = np.column_stack([np.ones_like(w), w, w**2][: len(names)])
    eta = x @ fit.params[names].to_numpy() + (fit.benchmark_offsets.get(benchmark, 0.0) if benchmark else 0.0)
    se = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", x, fit.cov.loc[names, names].to_numpy(), x), 0, None))
    return {
        "w": w.tolist(),
        "plw": np.asarray(w_to_plw(w)).tolist(),
        "fit": eta.tolist(),
        "lo": (eta - Z95 * se).tolist(),
        "hi": (eta + Z95 * se).tolist(),
    }
