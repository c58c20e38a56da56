"""Power simulation: calibration under no effect, monotone in items and seeds, and agreement with
the full `plw analyze` path and with the expected-information approximation."""

import numpy as np
import pandas as pd
import pytest

from plw.analysis.power import (
    Design,
    Effect,
    analyse_once,
    approximate_power,
    expected_se_b2,
    mde,
    phi_of,
    simulate_power,
    simulate_scores,
)
from plw.analysis.power_search import search
from plw.analysis.summary import analyze_results

LEVELS = (0.0, 1e-2, 1e-1, 2.463e-1, 1.0)


def small(seeds=1, n=100, benchmarks=3):
    return Design(plw=LEVELS, seeds=seeds, items={f"b{i}": n for i in range(benchmarks)})


def test_phi_matches_item_variance():
    # A beta score with precision n - 1 has the variance of an accuracy over n items.
    assert phi_of(100, 0.0) == pytest.approx(99.0)
    assert phi_of(100, 0.01) == pytest.approx(1 / 0.02 - 1)


def test_no_effect_rejects_at_about_alpha():
    effect = Effect(curvature=0.0, default_logit=0.3, extra=0.001)
    result = simulate_power(small(seeds=2), effect, n_sims=200, seed=1)
    # Detection means a significant *negative* w^2: half of a two-sided 5% test, 2.5% expected.
    assert result["power"] <= 0.06
    assert approximate_power(small(seeds=2), effect) == pytest.approx(0.025, abs=1e-6)


def test_power_grows_with_items_and_seeds():
    effect = Effect(curvature=-1.0, default_logit=0.3, extra=0.0)
    few, more_items, more_seeds = small(n=50), small(n=400), small(seeds=4, n=50)
    approx = [approximate_power(d, effect) for d in (few, more_items, more_seeds)]
    assert approx[0] < approx[1] and approx[0] < approx[2]
    simulated = [simulate_power(d, effect, n_sims=60, seed=2)["power"] for d in (few, more_items)]
    assert simulated[0] < simulated[1]


def test_approximation_agrees_with_simulation():
    effect = Effect(curvature=-1.0, default_logit=0.5, extra=0.002)
    design = small(seeds=2, n=100, benchmarks=4)
    simulated = simulate_power(design, effect, n_sims=150, seed=3)
    assert approximate_power(design, effect) == pytest.approx(simulated["power"], abs=0.12)
    # The Wald test's standard error: expected information vs the fits' own.
    assert expected_se_b2(design, effect) == pytest.approx(simulated["se_b2_median"], rel=0.3)


def _as_results(scores: pd.DataFrame) -> pd.DataFrame:
    """The simulated scores as a results table (docs/results-schema.md), for `plw analyze`."""
    rows = scores.assign(
        task="lmeval:" + scores["benchmark"], metric="acc", value=scores["score"], study="sim"
    )
    rows["cell"] = rows.apply(lambda r: f"plw={r.plw:g},seed={r.seed}", axis=1)
    columns = ["study", "cell", "model", "dataset", "plw", "seed", "regularizer", "task", "metric", "value"]
    return rows[columns]


def test_fast_path_equals_the_full_analysis():
    """Brute force: every simulated study through `analyze_results`, as `plw analyze` runs it."""
    effect = Effect(curvature=-0.8, default_logit=0.2, extra=0.002)
    design = small(seeds=2, n=80)
    for s in range(6):
        scores = simulate_scores(design, effect, np.random.default_rng(s))
        fast = analyse_once(scores, 0.05, effect.critical_plw)
        full = analyze_results(_as_results(scores), bootstrap=0)["datasets"]["sim"]
        assert fast["b2"] == pytest.approx(full["quadratic"]["estimate"], rel=1e-6)
        assert fast["detected"] == (full["quadratic"]["significant"] and full["quadratic"]["negative"])


def test_mde_is_the_curvature_with_80_percent_power():
    effect = Effect(curvature=-1.0, default_logit=0.3, extra=0.001)
    design = small(seeds=2)
    smallest = mde(expected_se_b2(design, effect))
    assert approximate_power(design, Effect(-smallest, default_logit=0.3, extra=0.001)) == pytest.approx(
        0.8, abs=0.01
    )


def test_search_finds_the_cheapest_design_reaching_the_target():
    effect = Effect(curvature=-0.6, default_logit=0.3, extra=0.002)
    design = small(seeds=1, n=100)
    available = {b: 1000 for b in design.items}

    def cost(d):
        return d.cells * (60 + 0.1 * sum(d.items.values()))

    ranked, frontier = search(design, effect, cost, available, target=0.8)
    best = ranked[0]
    assert approximate_power(best.design, effect) >= 0.8
    assert [c.cost_s for c in ranked] == sorted(c.cost_s for c in ranked)
    assert all(best.cost_s <= c.cost_s for c in frontier)
    assert all(n <= 1000 for n in best.design.items.values())
