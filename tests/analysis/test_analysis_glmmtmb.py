"""The glmmTMB backend (R) against the statsmodels beta regression on the same data."""

from __future__ import annotations

import pytest

from plw.analysis.design import prepare
from plw.analysis.fit import critical, quadratic_test
from plw.analysis.glmm import fit_beta
from plw.analysis.glmmtmb import fit_glmmtmb, glmmtmb_status
from plw.analysis.results import normalize_results
from plw.analysis.scores import select_scores

available, reason = glmmtmb_status()
pytestmark = pytest.mark.skipif(not available, reason=f"glmmtmb backend unavailable: {reason}")


def test_glmmtmb_agrees_with_statsmodels(sim):
    # Two models so the sum-coded nuisance column is exercised on both sides.
    scores, _ = select_scores(normalize_results(sim(n_benchmarks=8, models=("a", "b"), seed=21), "sim.csv"))
    data = prepare(scores, "synthetic")
    # One R run (R's start-up dominates): the fit, the likelihood-ratio refit and 3 bootstrap refits.
    py, r = fit_beta(data), fit_glmmtmb(data, bootstrap=3)
    assert r.backend == "glmmtmb" and r.converged, r.convergence
    assert r.params["w2"] == pytest.approx(py.params["w2"], rel=0.05)
    assert r.params["w"] == pytest.approx(py.params["w"], rel=0.05)
    assert critical(r, (0, 1))["critical_w"] == pytest.approx(critical(py, (0, 1))["critical_w"], abs=0.01)
    assert quadratic_test(r)["significant"] and quadratic_test(r)["lr_p_value"] < 1e-6
    # Random-intercept predictions track the fixed benchmark effects.
    for b, offset in py.benchmark_offsets.items():
        assert r.benchmark_offsets[b] == pytest.approx(offset, abs=0.05)
    assert r.extra["versions"]["glmmTMB"]
    assert r.boot is not None and 1 <= len(r.boot) <= 3 and r.boot_requested == 3
    assert (r.boot[:, 1] < 0).all()  # every replicate of a clearly concave curve stays concave
