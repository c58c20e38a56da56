"""The item-level model (plw.analysis.item_glmm): algebra, gradient, recovery, calibration, reports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plw.analysis.fit import critical, curve, quadratic_test
from plw.analysis.item_blocks import Crossed, cross, factor, leverage, scaled_traces
from plw.analysis.item_glmm import analyze_items, fit_items
from plw.analysis.item_laplace import BinomialLaplace
from plw.analysis.item_simulate import simulate_items
from plw.analysis.verdict import verdict


def _small_crossed(rng, n_item=7, n_cell=4, n_seed=2):
    item, cell = (a.ravel() for a in np.meshgrid(np.arange(n_item), np.arange(n_cell), indexing="ij"))
    keep = rng.random(len(item)) < 0.8  # unbalanced: some item x cell pairs missing
    item, cell = item[keep], cell[keep]
    seed = cell % n_seed
    return Crossed(item, [cell, seed], n_item, [n_cell, n_seed])


def _dense_h(c: Crossed, w: np.ndarray, sd: np.ndarray):
    z = np.zeros((len(c.item), c.n_item + c.m))
    z[np.arange(len(c.item)), c.item] = 1.0
    for col in c.cols:
        z[np.arange(len(c.item)), c.n_item + col] = 1.0
    lam = np.concatenate([np.full(c.n_item, sd[0]), c.lam_small(sd)])
    zl = z * lam
    return zl, zl.T @ (w[:, None] * zl) + np.eye(z.shape[1])


def test_schur_blocks_match_dense_algebra():
    rng = np.random.default_rng(0)
    c = _small_crossed(rng)
    w, sd = rng.uniform(0.1, 0.3, len(c.item)), np.array([1.3, 0.4, 0.7])
    f = factor(cross(c, w), c, sd)
    zl, h = _dense_h(c, w, sd)
    hinv = np.linalg.inv(h)
    r = rng.normal(size=h.shape[0])
    xi, xs = f.solve(r[: c.n_item], r[c.n_item :])
    assert np.allclose(np.concatenate([xi, xs]), hinv @ r)
    assert f.logdet == pytest.approx(np.linalg.slogdet(h)[1])
    assert np.allclose(leverage(f, c), np.einsum("ij,jk,ik->i", zl, hinv, zl))
    groups = np.repeat([0, 1, 2], [c.n_item, 4, 2])
    dense = [np.sum(1 - np.diag(hinv)[groups == g]) / sd[g] for g in range(3)]
    assert np.allclose(scaled_traces(f, c), dense)


def test_laplace_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    c = _small_crossed(rng, n_item=30, n_cell=6, n_seed=2)
    x = np.column_stack([np.ones(len(c.item)), c.small[0] / 5.0, (c.small[0] / 5.0) ** 2])
    y = (rng.random(len(c.item)) < 0.6).astype(float)
    prob = BinomialLaplace(y, x, c)
    # Inside, and with the cell sd on the boundary (the gradient is 0 there by symmetry).
    for theta in ([0.2, 0.8, -0.7, 1.3, 0.4, 0.25], [0.2, 0.8, -0.7, 1.3, 0.0, 0.25]):
        theta = np.array(theta)
        grad = prob.value_grad(theta)[1]
        num = []
        for j in range(len(theta)):
            up, down = theta.copy(), theta.copy()
            up[j] += 1e-4
            down[j] -= 1e-4
            num.append((prob.value_grad(up)[0] - prob.value_grad(down)[0]) / 2e-4)
        assert np.allclose(grad, num, atol=1e-6)


def test_binomial_recovers_truth():
    truth = {"Intercept": 0.5, "w": 1.0, "w2": -1.0}
    frame = simulate_items(n_seeds=2, n_benchmarks=3, n_items=200, item_sd=1.5, cell_sd=0.1, rng=11)
    fit = fit_items(frame, "binomial", "sim")
    assert fit.converged, fit.convergence
    for name, value in truth.items():
        assert abs(fit.params[name] - value) < 3 * fit.bse[name], name
    assert fit.extra["item_sd"] == pytest.approx(1.5, abs=0.15)
    assert fit.extra["cell_sd"] < 0.3 and fit.extra["n_items"] == 600 and fit.extra["n_cells"] == 12
    assert fit.extra["df_cell"] == 9 and fit.extra["seed_sd"] is not None
    offsets = fit.benchmark_offsets
    assert sum(offsets.values()) == pytest.approx(0.0, abs=1e-9)
    assert offsets["bench0"] == pytest.approx(-0.5, abs=0.35) and offsets["bench2"] == pytest.approx(
        0.5, abs=0.35
    )
    # The aggregate fit's helpers work unchanged on it.
    assert quadratic_test(fit)["negative"] and fit.lr_stat > 0
    assert 0 < critical(fit, (0.0, 1.0))["critical_plw"] < 1
    assert len(curve(fit, np.linspace(0, 1, 5))["fit"]) == 5


def test_gaussian_recovers_truth():
    frame = simulate_items(family="gaussian", n_items=100, item_sd=1.0, cell_sd=0.2, seed_sd=0.3,
                           n_seeds=3, residual_sd=0.8, beta=(0.3, 1.5, -1.2), rng=5)  # fmt: skip
    fit = fit_items(frame, "gaussian", "sim")
    assert fit.converged, fit.convergence
    for name, value in {"Intercept": 0.3, "w": 1.5, "w2": -1.2}.items():
        assert abs(fit.params[name] - value) < 3 * fit.bse[name], name
    assert fit.extra["residual_sd"] == pytest.approx(0.8, rel=0.05)
    assert fit.extra["item_sd"] == pytest.approx(1.0, rel=0.15)
    assert fit.extra["df_cell"] == 18 - 3


def _replicates(b2: float, n: int) -> np.ndarray:
    """(estimate - truth) / SE of w2 and the fit's p-value, over n simulated small studies."""
    out = []
    for r in range(n):
        frame = simulate_items(n_seeds=2, n_benchmarks=2, n_items=40, beta=(0.5, 1.0 if b2 else 0.0, b2),
                               cell_sd=0.1, rng=1000 * r + 7)  # fmt: skip
        fit = fit_items(frame, lr_test=False)
        out.append(((fit.params["w2"] - b2) / fit.bse["w2"], fit.pvalues["w2"], fit.extra["df_cell"]))
    return np.array(out)


def test_wald_coverage_and_null_rejection_rate():
    """100 studies of 12 cells (6 PLW levels x 2 seeds) x 80 items, cell sd 0.1, under w2 = -1 and 0.

    The interval and test use the fit's reference distribution, t with df_cell = 12 - 3 = 9. With 300
    studies per arm of this design the t test rejected a true w2 = 0 in 2.7% and the z test in 6.0%;
    with cell sd 0.3 (cells scatter more than their binomial noise) t gave 6.7% and z 11.0%
    (plw.analysis.item_glmm's docstring has the table).
    """
    from scipy import stats

    cover = _replicates(-1.0, 100)
    q = stats.t.ppf(0.975, cover[0, 2])
    assert np.mean(np.abs(cover[:, 0]) < q) >= 0.90
    null = _replicates(0.0, 100)
    assert np.mean(null[:, 1] < 0.05) <= 0.08


def test_analyze_items_reports_like_the_aggregate_fit():
    out = analyze_items(simulate_items(n_items=60, rng=3), "sim")
    for key in ("coefficients", "quadratic", "p_value", "critical_plw", "critical_plw_ci", "curve",
                "benchmark_curves", "converged", "n_obs", "plw_levels", "benchmarks", "verdict",
                "variance_components", "n_items", "n_cells"):  # fmt: skip
        assert out[key] is not None, key
    assert out["n_obs"] == 12 * 3 * 60 and out["critical_plw_ci_method"] == "delta"
    assert set(out["variance_components"]) == {"item_sd", "cell_sd", "seed_sd", "residual_sd"}
    assert out["verdict"] == verdict(out)
    gauss = analyze_items(simulate_items(family="gaussian", n_items=30, rng=3), "g", family="gaussian")
    # Identity link: the fitted curve is on the outcome's scale, not squashed into (0, 1).
    assert gauss["family"] == "gaussian" and gauss["curve"]["fit"][0] == pytest.approx(
        gauss["coefficients"]["Intercept"]["estimate"]
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda f: f.assign(plw=0.1), "only one PLW level"),
        (lambda f: f.assign(value=1.0), "outcome is constant"),
        (lambda f: f.assign(value=f["value"] * 0.5), "needs 0/1 values"),
        (lambda f: f[f["plw"].isin([0.0, 0.1, 1.0]) & (f["seed"] == "0")], "no degree of freedom"),
    ],
)
def test_unestimable_data_give_reasons_not_exceptions(change, reason):
    out = analyze_items(change(simulate_items(n_items=20, rng=4)), "x")
    assert any(reason in m for m in out["not_estimable"]), out["not_estimable"]
    assert out["quadratic"] is None and out["verdict"].startswith("No test of the quadratic term")


def test_two_levels_fit_linear_only_and_boundary_is_reported():
    frame = simulate_items(plw_levels=(0.0, 1.0), n_seeds=3, n_items=50, cell_sd=0.0, rng=6)
    out = analyze_items(frame, "two")
    assert "w2" not in out["coefficients"] and out["coefficients"]["w"]["p_value"] is not None
    assert any("only 2 PLW levels" in m for m in out["not_estimable"])
    fit = fit_items(frame)
    assert fit.converged and fit.extra["df_cell"] == 6 - 2


def test_constant_benchmark_is_left_out_and_regularised_rows_ignored():
    frame = simulate_items(n_items=30, rng=8)
    frame.loc[frame["benchmark"] == "bench2", "value"] = 1.0
    extra = frame.head(50).assign(regularizer="kl", value=0.0)
    out = analyze_items(pd.concat([frame, extra]), "x")
    assert out["benchmarks"] == ["bench0", "bench1"]
    assert any("bench2" in m for m in out["warnings"])


def test_pooled_fit_sum_codes_the_dataset_and_counts_it_at_cell_level():
    a = simulate_items(n_items=30, rng=1).assign(dataset="alpaca")
    b = simulate_items(n_items=30, rng=2).assign(dataset="dolly")
    b["cell"] = b["cell"] + ",dolly"
    fit = fit_items(pd.concat([a, b]))
    assert list(fit.params.index) == ["Intercept", "w", "w2", "dataset[alpaca]"]
    assert fit.extra["n_cells"] == 24 and fit.extra["df_cell"] == 24 - 4 and fit.converged


def test_mostly_constant_items_are_flagged():
    out = analyze_items(simulate_items(n_items=50, item_sd=20.0, rng=2), "x")
    assert any("got the same value from every cell" in m for m in out["warnings"])
    assert out["converged"] and out["coefficients"]["w2"]["std_error"] > 0
