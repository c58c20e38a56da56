"""Degenerate input: the analysis says what it cannot estimate, and reports the rest."""

from __future__ import annotations

import json

import numpy as np

from plw.analysis.results import normalize_results
from plw.analysis.summary import analyze_results


def _analyze(df, **kw):
    out = analyze_results(normalize_results(df, "sim.csv"), bootstrap=kw.pop("bootstrap", 0), **kw)
    json.dumps(out, allow_nan=False)  # always strict JSON
    return out


def _scored(df):
    return ~df["task"].isin(["train", "retention"])


def test_two_plw_levels_give_a_linear_fit_only(sim):
    out = _analyze(sim(plw_levels=(0.0, 1.0)))
    fit = out["datasets"]["synthetic"]
    assert fit["quadratic"] is None and fit["critical_plw"] is None and fit["p_value"] is None
    assert "w" in fit["coefficients"] and "w2" not in fit["coefficients"]
    assert any("only 2 PLW levels" in m for m in fit["not_estimable"])
    assert any("only 2 PLW levels" in m for m in out["not_estimable"])
    assert fit["verdict"].startswith("No test of the quadratic term")


def test_one_plw_level_reports_means_only(sim):
    out = _analyze(sim(plw_levels=(0.1,)))
    fit = out["pooled"]
    assert fit["coefficients"] is None
    assert fit["means_by_plw"][0]["plw"] == 0.1 and fit["means_by_plw"][0]["n"] == 6
    assert any("only one PLW level" in m for m in fit["not_estimable"])


def test_single_benchmark_is_fitted_without_benchmark_effect(sim):
    out = _analyze(sim(n_benchmarks=1, seeds=(0, 1)))
    fit = out["pooled"]
    assert fit["quadratic"]["estimate"] < 0 and fit["critical_plw"] is not None
    assert any("only one benchmark" in m for m in fit["not_estimable"])


def test_constant_scores_are_not_estimable(sim):
    df = sim()
    df.loc[_scored(df), "value"] = 0.5
    df.loc[df["task"].str.startswith("wmt"), "value"] = 50.0
    out = _analyze(df)
    fit = out["pooled"]
    assert fit["coefficients"] is None
    assert any("constant" in m for m in fit["not_estimable"])
    assert out["mechanisms"]["trends"]  # the rest is still reported


def test_nans_and_missing_cells_are_reported_and_fit_continues(sim):
    df = sim()
    idx = df.index[_scored(df)]
    df.loc[idx[:3], "value"] = np.nan
    df = df.drop(idx[10:12])
    out = _analyze(df)
    fit = out["pooled"]
    assert fit["n_obs"] == 60 - 5
    assert any("3 missing (NaN) score(s)" in w for w in fit["warnings"])
    assert any("have no score" in w for w in out["warnings"])
    assert fit["quadratic"]["significant"]


def test_unknown_backend_is_a_plw_error(sim):
    import pytest

    from plw.errors import PLWError

    with pytest.raises(PLWError, match="unknown backend 'lme4'"):
        _analyze(sim(), backend="lme4")


def test_only_train_rows(sim):
    df = sim()
    out = _analyze(df[~_scored(df)])
    assert out["pooled"] is None and out["datasets"] == {}
    assert any("no scored tasks" in m for m in out["not_estimable"])


def test_a_saturated_fit_is_not_estimable_and_a_small_one_is_flagged(sim):
    # One benchmark, four PLW levels, one seed: 4 scores for intercept, w, w^2 and the precision.
    df = sim(n_benchmarks=1, plw_levels=(0.0, 0.01, 0.1, 1.0), seeds=(0,))
    fit = _analyze(df)["pooled"]
    assert fit["coefficients"] is None
    assert any("4 scores for 4 parameters (a saturated fit)" in m for m in fit["not_estimable"])
    # Two seeds: 8 scores, 4 residual degrees of freedom; fitted, with a warning.
    fit = _analyze(sim(n_benchmarks=1, plw_levels=(0.0, 0.01, 0.1, 1.0), seeds=(0, 1)))["pooled"]
    assert fit["coefficients"] is not None
    assert any("4 residual degree(s) of freedom" in m for m in fit["warnings"])
