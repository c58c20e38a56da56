"""Assemble the whole analysis of a results table into one JSON-ready dict (docs/analysis.md).

Per dataset and pooled over datasets: the GLMM fit, the quadratic test, the critical PLW with its
intervals, fitted curves, and what could not be estimated; then the relative aggregate score, the
regulariser comparison and the mechanism measures. When the table has extra factor columns
(`train.<path>`) that vary, also per factor and dataset the PLW x factor interaction
(`plw.analysis.interaction`) and, when the completion weight varies, the quadratic surface over both
weights (`plw.analysis.surface`); without them the output is the one-dimensional analysis alone.
"""

from __future__ import annotations

import math
import platform
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from plw.analysis import aggregate, mechanisms
from plw.analysis.design import FitData, prepare
from plw.analysis.fit import FitResult, coefficient_table, critical, curve, quadratic_test
from plw.analysis.results import factor_columns, load_results
from plw.analysis.scores import select_scores
from plw.analysis.verdict import verdict
from plw.errors import PLWError

BACKEND_NAMES = ("statsmodels", "mixedlm", "glmmtmb")
CURVE_POINTS = 41


def get_backend(name: str):
    """The fit function of a backend by name; PLWError for an unknown name."""
    if name == "glmmtmb":
        from plw.analysis.glmmtmb import fit_glmmtmb

        return fit_glmmtmb
    from plw.analysis.glmm import BACKENDS

    if name not in BACKENDS:
        raise PLWError(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")
    return BACKENDS[name]


def _means_by_plw(data: FitData) -> list[dict]:
    g = data.frame.groupby("plw")["score"]
    return [
        {"plw": float(p), "mean_score": float(m), "n": int(n)}
        for (p, m), n in zip(g.mean().items(), g.size(), strict=True)
    ]


def _base(data: FitData, backend: str) -> dict:
    f = data.frame
    return {
        "label": data.label,
        "backend": backend,
        "n_obs": int(len(f)),
        "plw_levels": data.plw_levels,
        "benchmarks": data.benchmarks,
        "models": sorted(f["model"].unique()),
        "datasets": sorted(f["dataset"].unique()),
        "means_by_plw": _means_by_plw(data),
        "coefficients": None,
        "benchmark_effects": None,
        "quadratic": None,
        "p_value": None,
        "critical_plw": None,
        "critical_plw_ci": None,
        "critical_plw_ci_method": None,
        "critical_plw_ci_delta": None,
        "critical_plw_ci_bootstrap": None,
        "critical_w": None,
        "clipped": None,
        "outside_observed_range": None,
        "is_minimum": None,
        "bootstrap": None,
        "fit_details": None,
        "converged": None,
        "convergence": None,
        "curve": None,
        "benchmark_curves": None,
        "warnings": list(data.warnings),
        "not_estimable": list(data.not_estimable),
    }


def _fill(out: dict, data: FitData, fit: FitResult) -> None:
    """Add the estimates of a successful fit to the per-fit dict."""
    out.update(
        coefficients=coefficient_table(fit),
        benchmark_effects=fit.benchmark_offsets,
        converged=fit.converged,
        convergence=fit.convergence,
        fit_details=fit.extra,
    )
    if not fit.converged:
        out["warnings"].append(f"the {fit.backend} fit did not converge cleanly: {fit.convergence}")
    grid = np.linspace(0.0, 1.0, CURVE_POINTS)
    out["curve"] = curve(fit, grid)
    out["benchmark_curves"] = {b: curve(fit, grid, b) for b in data.benchmarks}
    if "w2" not in fit.params.index:
        return
    quad = quadratic_test(fit)
    crit = critical(fit, (min(data.plw_levels), max(data.plw_levels)))
    out.update(quadratic=quad, p_value=quad["p_value"], **crit)
    if crit["outside_observed_range"]:
        out["warnings"].append(
            "the vertex lies outside the observed PLW range: the critical PLW is an extrapolation"
        )
    if crit["bootstrap"]["share_convex"]:
        out["warnings"].append(
            f"{crit['bootstrap']['share_convex']:.0%} of bootstrap refits have a non-negative "
            "w^2 coefficient: the curvature is poorly determined"
        )


def analyze_fit(data: FitData, backend: str = "statsmodels", bootstrap: int = 0, seed: int = 0) -> dict:
    """Fit one GLMM and report what it supports.

    Args:
        data: from `design.prepare`.
        backend: one of BACKEND_NAMES.
        bootstrap: parametric bootstrap replicates for the critical PLW interval.
        seed: random seed of the bootstrap.

    Returns:
        The per-fit dict (keys in docs/analysis.md); unestimable quantities are None and listed.
    """
    fit_fn = get_backend(backend)
    out = _base(data, backend)
    if data.fittable:
        try:
            _fill(out, data, fit_fn(data, bootstrap=bootstrap, rng=np.random.default_rng(seed)))
        except (np.linalg.LinAlgError, ValueError, ZeroDivisionError, KeyError) as err:
            out["not_estimable"].append(f"model fit failed ({type(err).__name__}: {err})")
    out["verdict"] = verdict(out)
    return out


def analyze_results(
    results: pd.DataFrame, backend: str = "statsmodels", bootstrap: int = 200, seed: int = 0
) -> dict:
    """The full analysis of a results table (see docs/analysis.md for the keys).

    Raises:
        PLWError: an unknown or unavailable backend, or a scored value outside [0, 1].
    """
    get_backend(backend)
    scores, warns = select_scores(results)
    out = {
        "source": results.attrs.get("source"),
        "backend": backend,
        "bootstrap": bootstrap,
        "seed": seed,
        "n_rows": int(len(results)),
        "tasks": sorted(results["task"].unique()),
        "datasets": {},
    }
    not_estimable: list[str] = []
    if scores.empty:
        not_estimable.append("GLMM: no scored tasks in the table (only train / retention rows?)")
    for name in sorted(scores["dataset"].unique()):
        out["datasets"][name] = analyze_fit(
            prepare(scores[scores["dataset"] == name], name), backend, bootstrap, seed
        )
    if len(out["datasets"]) == 1:
        out["pooled"] = {**next(iter(out["datasets"].values())), "label": "pooled"}
    elif out["datasets"]:
        out["pooled"] = analyze_fit(prepare(scores, "pooled", pooled=True), backend, bootstrap, seed)
    else:
        out["pooled"] = None
    extra = _extra_factor_analyses(scores, seed)
    out.update(extra)
    rel, rel_warn = aggregate.relative_scores(scores)
    regs, reg_missing = aggregate.compare_regularizers(rel)
    trends, mech_missing = mechanisms.mechanism_trends(results)
    out.update(
        relative_scores=_records(rel),
        regularizers=regs,
        mechanisms={"table": _records(mechanisms.mechanism_table(results)), "trends": trends},
    )
    fits = {**out["datasets"], **({"pooled": out["pooled"]} if len(out["datasets"]) > 1 else {})}
    fits.update(_extra_fits(extra))
    out["warnings"] = warns + rel_warn + [f"{k}: {m}" for k, f in fits.items() for m in f["warnings"]]
    out["not_estimable"] = (
        not_estimable
        + reg_missing
        + mech_missing
        + [f"{k}: {m}" for k, f in fits.items() for m in f["not_estimable"]]
    )
    out["versions"] = software_versions(out)
    return to_jsonable(out)


def varying_factors(scores: pd.DataFrame) -> list[str]:
    """Extra factor columns with more than one level among the unregularised scores."""
    rows = scores[scores["regularizer"] == "none"]
    return [c for c in factor_columns(scores) if rows[c].nunique() > 1]


def _extra_factor_analyses(scores: pd.DataFrame, seed: int) -> dict:
    """`interactions` ({factor: {dataset: result}}) and `surface` ({dataset: result}) when they apply."""
    from plw.analysis.interaction import interaction
    from plw.analysis.surface import COMPLETION, surface

    factors = varying_factors(scores)
    if not factors:
        return {}
    datasets = sorted(scores["dataset"].unique())
    out: dict = {"interactions": {}}
    for factor in factors:
        out["interactions"][factor] = {
            d: interaction(scores[scores["dataset"] == d], factor, d) for d in datasets
        }
    if COMPLETION in factors:
        out["surface"] = {d: surface(scores[scores["dataset"] == d], d, seed=seed) for d in datasets}
    return out


def _extra_fits(extra: dict) -> dict[str, dict]:
    """The interaction and surface results keyed for the warnings and not_estimable lists."""
    named = {
        f"{d} (PLW x {f})": result
        for f, per in extra.get("interactions", {}).items()
        for d, result in per.items()
    }
    named.update({f"{d} (surface)": result for d, result in (extra.get("surface") or {}).items()})
    return named


def analyze_study(
    path: str | Path,
    backend: str = "statsmodels",
    bootstrap: int = 200,
    seed: int = 0,
    items: str | Path | None = None,
) -> dict:
    """Load a study's results (directory or file) and analyse them.

    When per-item results go with them (`plw.analysis.items.find_items`, or `items` given), the
    item-level analysis is added as `item_level` (`plw.analysis.item_level`), the primary one; when
    those items cannot be compared across cells, `item_level` is {"error": one line naming the cell
    and benchmark} and the aggregate analysis stands.
    """
    results = load_results(path)
    out = analyze_results(results, backend=backend, bootstrap=bootstrap, seed=seed)
    section = item_level_section(path, results, items, seed)
    if section is not None:
        out["item_level"] = section
    return out


def item_level_section(
    path: str | Path, results: pd.DataFrame, items: str | Path | None = None, seed: int = 0
) -> dict | None:
    """The `item_level` entry of an analysis (see `analyze_study`), or None without per-item results."""
    from plw.analysis.item_level import analyze_item_level
    from plw.analysis.items import find_items

    try:
        table = find_items(path, results, items)
        return None if table is None else to_jsonable(analyze_item_level(table, results, seed=seed))
    except PLWError as err:  # ItemSetError, or an unreadable item file
        return {"error": str(err)}


def _records(df: pd.DataFrame) -> list[dict]:
    return df.to_dict(orient="records")


def software_versions(analysis: dict | None = None) -> dict:
    """Versions of Python and the libraries the analysis used (R and glmmTMB when they ran)."""
    out = {"python": platform.python_version()}
    for pkg in ("plw", "numpy", "pandas", "scipy", "statsmodels", "matplotlib"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    for fit in (analysis or {}).get("datasets", {}).values():
        out.update((fit.get("fit_details") or {}).get("versions", {}))
    return out


def to_jsonable(obj):
    """Recursively convert numpy scalars / arrays to Python and NaN / inf to None (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | np.ndarray):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
