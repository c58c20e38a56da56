"""Known-truth checks of the statsmodels backends on data simulated from the fitted model."""

from __future__ import annotations

import numpy as np
import pytest

from plw.analysis.design import prepare, sum_code
from plw.analysis.fit import critical, curve, quadratic_test
from plw.analysis.glmm import fit_beta, fit_mixedlm
from plw.analysis.results import normalize_results
from plw.analysis.scores import select_scores
from plw.analysis.transform import w_to_plw

TRUE_W = 0.652
TRUE_PLW = w_to_plw(TRUE_W)  # 0.2415, the paper's optimum


def _data(sim, **kw):
    scores, _ = select_scores(normalize_results(sim(**kw), "sim.csv"))
    return prepare(scores, "synthetic")


def test_sum_code_columns_sum_to_zero_over_levels():
    import pandas as pd

    codes = sum_code(pd.Series(["a", "b", "c", "a"]), "benchmark")
    assert list(codes.columns) == ["benchmark[a]", "benchmark[b]"]
    assert codes.loc[2].tolist() == [-1.0, -1.0]  # the last level
    assert codes.loc[0].tolist() == [1.0, 0.0]


@pytest.mark.parametrize("fit_fn", [fit_beta, fit_mixedlm])
def test_delta_interval_covers_the_true_critical_plw(sim, fit_fn):
    covered, estimates = 0, []
    for seed in range(12):
        fit = fit_fn(_data(sim, seed=100 + seed))
        crit = critical(fit, (0.0, 1.0))
        lo, hi = crit["critical_plw_ci_delta"]
        covered += lo <= TRUE_PLW <= hi
        estimates.append(crit["critical_w"])
    assert covered >= 10  # nominal 95%: 12 of 12 expected, 10 allows for chance
    assert np.mean(estimates) == pytest.approx(TRUE_W, abs=0.02)


@pytest.mark.parametrize("fit_fn", [fit_beta, fit_mixedlm])
def test_bootstrap_interval_covers_truth_and_quadratic_is_detected(sim, fit_fn):
    fit = fit_fn(_data(sim, seed=7), bootstrap=25, rng=np.random.default_rng(1))
    assert fit.converged, fit.convergence
    assert fit.convergence.startswith("converged")
    quad = quadratic_test(fit)
    assert quad["negative"] and quad["significant"] and quad["p_value"] < 1e-6
    assert quad["lr_p_value"] < 1e-6
    crit = critical(fit, (0.0, 1.0))
    assert crit["bootstrap"]["converged"] >= 20
    assert crit["critical_plw_ci_method"] == "bootstrap"
    lo, hi = crit["critical_plw_ci_bootstrap"]
    assert lo <= TRUE_PLW <= hi and lo <= crit["critical_plw"] <= hi


def test_true_coefficients_are_recovered(sim):
    # logit mu = k + u_b - 1.5 (w - 0.652)^2  =>  b1 = 1.956, b2 = -1.5
    fit = fit_beta(_data(sim, seed=3, n_benchmarks=8, seeds=(0, 1)))
    se = fit.bse
    assert abs(fit.params["w2"] + 1.5) < 3 * se["w2"]
    assert abs(fit.params["w"] - 2 * 1.5 * TRUE_W) < 3 * se["w"]
    assert fit.extra["precision_phi"] == pytest.approx(400, rel=0.3)


def test_flat_truth_gives_a_non_significant_quadratic(sim):
    fit = fit_beta(_data(sim, seed=3, curvature=0.0))
    assert not quadratic_test(fit)["significant"]


def test_backends_agree_on_logit_scale(sim):
    data = _data(sim, seed=11)
    a, b = fit_beta(data), fit_mixedlm(data)
    assert a.params["w2"] == pytest.approx(b.params["w2"], rel=0.1)
    assert critical(a, (0, 1))["critical_w"] == pytest.approx(critical(b, (0, 1))["critical_w"], abs=0.03)


def test_curve_band_contains_fit_and_benchmark_offsets_shift_it(sim):
    data = _data(sim, seed=5)
    fit = fit_beta(data)
    grid = np.linspace(0, 1, 11)
    c = curve(fit, grid)
    assert np.all(np.array(c["lo"]) <= np.array(c["fit"])) and np.all(np.array(c["fit"]) <= np.array(c["hi"]))
    assert c["plw"][5] == pytest.approx(w_to_plw(0.5))
    offsets = fit.benchmark_offsets
    assert sum(offsets.values()) == pytest.approx(0.0, abs=1e-9)  # sum coding
    top = max(offsets, key=offsets.get)
    assert np.all(np.array(curve(fit, grid, top)["fit"]) > np.array(c["fit"]))


def test_diagnose_states_failures_plainly():
    from plw.analysis.glmm import diagnose

    ok, text = diagnose(True, 12, 1e-8, True, [])
    assert ok and text.startswith("converged: optimizer reported convergence after 12 iterations")
    ok, text = diagnose(True, 12, 0.5, False, ["ConvergenceWarning: boundary"])
    assert not ok and text.startswith("did NOT converge cleanly")
    assert "Hessian NOT negative definite" in text and "5.0e-01" in text and "boundary" in text
    assert diagnose(True, None, None, True, ["x"])[0]  # statsmodels warnings alone do not fail a fit
    assert not diagnose(True, None, None, True, ["x"], warnings_fail=True)[0]
