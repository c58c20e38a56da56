"""PLW x an extra factor: does the paper's curve differ between the levels of a training setting?

For an extra factor F (a `train.<path>` column such as `train.learning_rate`) with levels 1..k, on
the unregularised cells of one dataset, the beta regression (logit link, statsmodels' BetaModel as in
the default backend)

    logit E[score] = b0 + a_F + b1_F w + b2_F w^2 (+ model, other extra factors, benchmark)

gives every level its own PLW curve (a_F and the nuisance effects are sum-coded). The model with one
curve for all levels (b1, b2 shared, a_F kept) is fitted too: twice their log-likelihood difference,
on 2 (k - 1) degrees of freedom, is the likelihood-ratio test that the curves differ; a Wald test of
the same contrasts (b1_F - b1_1, b2_F - b2_1) is reported beside it. Each level's critical PLW is its
own vertex -b1_F / (2 b2_F), with the delta-method 95% interval of the one-curve analysis
(`plw.analysis.fit.critical`), computed from the covariance of that level's (b1_F, b2_F).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from plw.analysis.design import sum_code
from plw.analysis.fit import FitResult, critical, curve, quadratic_test
from plw.analysis.glmm import BetaFit, beta_fit
from plw.analysis.results import factor_columns
from plw.analysis.transform import plw_to_w, squeeze

ALPHA = 0.05
CURVE_POINTS = 41


def levels_of(values: pd.Series) -> list:
    """A factor's levels in a natural order (numbers ascending, else text)."""
    return sorted(values.dropna().unique(), key=lambda v: (isinstance(v, str), v))


def nuisance(frame: pd.DataFrame, skip: tuple[str, ...]) -> pd.DataFrame:
    """Sum-coded model, other extra factors and benchmark effects (each only when it varies)."""
    names = ["model", *(c for c in factor_columns(frame) if c not in skip), "benchmark"]
    parts = [sum_code(frame[n].astype(str), n) for n in names if frame[n].nunique() > 1]
    return pd.concat(parts, axis=1) if parts else pd.DataFrame(index=frame.index)


def usable_rows(scores: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Unregularised cells with a score and every column in `columns` present, with w and y added."""
    rows = scores[(scores["regularizer"] == "none") & scores["score"].notna()]
    rows = rows.dropna(subset=columns).copy()
    rows["w"] = plw_to_w(rows["plw"].to_numpy(dtype=float))
    rows["y"] = squeeze(rows["score"].to_numpy(dtype=float))
    return rows


def _level_fit(fit: BetaFit, code: pd.Series, tag: str, base: FitResult) -> FitResult:
    """One level's curve as a one-curve FitResult: (Intercept + a_level, b1_level, b2_level), covariance."""
    names = list(fit.params.index)
    a = np.zeros((3, len(names)))
    a[0, names.index("Intercept")] = 1.0
    for column, value in code.items():
        a[0, names.index(column)] = value
    a[1, names.index(f"w:{tag}")] = 1.0
    a[2, names.index(f"w2:{tag}")] = 1.0
    params = pd.Series(a @ fit.params.to_numpy(), index=["Intercept", "w", "w2"])
    cov = pd.DataFrame(a @ fit.cov.to_numpy() @ a.T, index=params.index, columns=params.index)
    se = np.sqrt(np.clip(np.diag(cov.to_numpy()), 0, None))
    pvalues = pd.Series(2 * stats.norm.sf(np.abs(params.to_numpy() / np.where(se > 0, se, np.nan))),
                        index=params.index)  # fmt: skip
    return FitResult(base.backend, params, cov, pvalues, {}, base.converged, base.convergence)


def curves_differ_test(full: BetaFit, common: BetaFit, tags: list[str]) -> dict:
    """Likelihood-ratio and Wald tests that every level has the same (b1, b2)."""
    df = 2 * (len(tags) - 1)
    lr = max(2 * (full.llf - common.llf), 0.0)
    names = [f"{t}:{tag}" for tag in tags for t in ("w", "w2")]
    contrast = np.zeros((df, len(names)))
    for i in range(1, len(tags)):
        for j in range(2):
            contrast[2 * (i - 1) + j, 2 * i + j], contrast[2 * (i - 1) + j, j] = 1.0, -1.0
    d = contrast @ full.params[names].to_numpy()
    middle = contrast @ full.cov.loc[names, names].to_numpy() @ contrast.T
    wald = float(d @ np.linalg.lstsq(middle, d, rcond=None)[0])
    lr_p = float(stats.chi2.sf(lr, df))
    return {
        "df": df,
        "lr_stat": lr,
        "lr_p_value": lr_p,
        "wald_stat": wald,
        "wald_p_value": float(stats.chi2.sf(wald, df)),
        "significant": bool(lr_p < ALPHA),
    }


def interaction(scores: pd.DataFrame, factor: str, label: str) -> dict:
    """PLW's curve per level of `factor`, the critical PLW per level, and the test that curves differ.

    Args:
        scores: scores of one dataset (or all, with a dataset column varying: then it is a nuisance).
        factor: the extra factor column, `train.<path>`.
        label: the dataset name, for messages.

    Returns:
        {factor, label, levels, n_obs, test, per_level: {level: fit}, verdict, warnings, not_estimable};
        a per-level fit has the one-curve keys (quadratic, critical_plw, critical_plw_ci, curve, ...).
    """
    rows = usable_rows(scores, [factor])
    levels = levels_of(rows[factor])
    out = {"factor": factor, "label": label, "levels": [str(v) for v in levels], "n_obs": int(len(rows)),
           "test": None, "per_level": {}, "warnings": [], "not_estimable": []}  # fmt: skip
    short = {str(v): int(rows.loc[rows[factor] == v, "plw"].nunique()) for v in levels}
    if len(levels) < 2:
        out["not_estimable"].append("fewer than 2 levels with scores")
    elif min(short.values()) < 3:
        level = min(short, key=short.get)
        out["not_estimable"].append(
            f"level {level} has {short[level]} PLW level(s); each level needs at least 3"
        )
    if out["not_estimable"]:
        out["verdict"] = f"No test of PLW x {factor}: {out['not_estimable'][0]}."
        return out
    tags = [str(v) for v in levels]
    main = sum_code(rows[factor].astype(str), factor)
    rest = nuisance(rows, skip=(factor,))
    curves = {}
    for tag, level in zip(tags, levels, strict=True):
        on = (rows[factor] == level).astype(float)
        curves[f"w:{tag}"], curves[f"w2:{tag}"] = rows["w"] * on, rows["w"] ** 2 * on
    intercept = pd.DataFrame({"Intercept": 1.0}, index=rows.index)
    full_x = pd.concat([intercept, main, pd.DataFrame(curves), rest], axis=1)
    common_x = pd.concat([intercept, main, rows[["w"]], (rows["w"] ** 2).rename("w2"), rest], axis=1)
    if len(rows) <= full_x.shape[1] + 1:
        out["not_estimable"].append(f"{len(rows)} scores for {full_x.shape[1] + 1} parameters")
        out["verdict"] = f"No test of PLW x {factor}: {out['not_estimable'][0]}."
        return out
    y = rows["y"].to_numpy()
    full, common = beta_fit(y, full_x), beta_fit(y, common_x)
    if not (full.converged and common.converged):
        out["warnings"].append(f"a fit did not converge cleanly: {full.convergence}")
    out["test"] = curves_differ_test(full, common, tags)
    base = FitResult("statsmodels", full.params, full.cov, pd.Series(dtype=float), {}, full.converged,
                     full.convergence)  # fmt: skip
    codes = sum_code(pd.Series(tags), factor)
    grid = np.linspace(0.0, 1.0, CURVE_POINTS)
    for i, (tag, level) in enumerate(zip(tags, levels, strict=True)):
        fit = _level_fit(full, codes.iloc[i], tag, base)
        plws = sorted(float(p) for p in rows.loc[rows[factor] == level, "plw"].unique())
        out["per_level"][tag] = {"level": tag, "plw_levels": plws, "quadratic": quadratic_test(fit),
                                 **critical(fit, (plws[0], plws[-1])), "curve": curve(fit, grid)}  # fmt: skip
    out["verdict"] = verdict(out)
    return out


def verdict(result: dict) -> str:
    """One sentence on whether PLW's curve differs between the factor's levels, and each critical PLW."""
    from plw.analysis.verdict import fmt_ci, fmt_p

    test = result["test"]
    name = result["factor"]
    head = (
        f"The PLW curves differ between the levels of {name}"
        if test["significant"]
        else f"These data do not show the PLW curves differing between the levels of {name}"
    )
    parts = []
    for tag, fit in result["per_level"].items():
        crit = fit.get("critical_plw")
        shape = "trough" if fit.get("is_minimum") else "critical PLW"
        value = "n/a" if crit is None else f"{crit:.3g}"
        parts.append(f"{tag}: {shape} {value} (95% CI {fmt_ci(fit.get('critical_plw_ci'))})")
    return (
        f"{head} (likelihood ratio chi2 = {test['lr_stat']:.3g}, df = {test['df']}, "
        f"{fmt_p(test['lr_p_value'])}). Per level: " + "; ".join(parts) + "."
    )
