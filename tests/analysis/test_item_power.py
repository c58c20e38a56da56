"""Power of the item-level model: the simulator, calibration of the simulated test, the fast path
against simulation, the pilot estimate and the design search. bench/item_power_checks.py runs the
simulation checks with 400 studies; these use 100 (each test well under a minute)."""

import time
from dataclasses import replace

import numpy as np
import pytest

from plw.analysis.item_pilot import estimate_from_pilot, implied_discordance, observed_discordance
from plw.analysis.item_power import (
    PAPER_ITEM_EFFECT,
    ItemDesign,
    budgeted_item_power,
    simulate_item_power,
    simulate_items,
)
from plw.analysis.item_power_approx import approximate_item_power, cell_df, item_mde
from plw.analysis.power_search import search
from plw.analysis.simulate import PAPER_PLW_LEVELS

L5 = (0.0, 1e-2, 1e-1, 2.463e-1, 1.0)
SMALL = ItemDesign(plw=L5, seeds=2, items={"a": 30, "b": 30})
SMALL_20 = ItemDesign(plw=L5, seeds=2, items={"a": 100, "b": 100})
SPREAD_2 = replace(PAPER_ITEM_EFFECT, item_sd=2.0, cell_sd=0.1, default_logit=0.781)
"""Items of spread 2 (the harder case for the Rasch information: many items near 50%)."""


def test_every_cell_answers_the_same_items():
    design = ItemDesign(plw=L5, seeds=2, items={"a": 7, "b": 5})
    frame = simulate_items(design, PAPER_ITEM_EFFECT, np.random.default_rng(0))
    assert len(frame) == design.cells * 12 and set(frame["value"]) <= {0.0, 1.0}
    per_cell = frame.groupby("cell")["item"].apply(frozenset)
    assert per_cell.nunique() == 1 and frame["cell"].nunique() == design.cells
    assert frame["seed"].map(type).eq(str).all() and (frame["regularizer"] == "none").all()


def test_no_effect_rejects_at_most_alpha_and_intervals_cover():
    result = simulate_item_power(SMALL_20, replace(PAPER_ITEM_EFFECT, curvature=0.0), n_sims=100, seed=1)
    # Detection is a significant *negative* w^2: at most alpha / 2 = 0.025 expected, 0.06 allowed.
    assert result["power"] <= 0.06
    assert result["coverage_b2"] >= 0.90


@pytest.mark.parametrize(
    ("design", "effect"),
    [
        (SMALL, replace(SPREAD_2, curvature=-2.0)),
        (SMALL_20, replace(PAPER_ITEM_EFFECT, curvature=-4.0)),
    ],
)
def test_fast_path_agrees_with_simulation(design, effect):
    simulated = simulate_item_power(design, effect, n_sims=100, seed=1)
    assert approximate_item_power(design, effect) == pytest.approx(simulated["power"], abs=0.1)
    assert simulated["coverage_b2"] >= 0.90


def test_fast_path_is_fast_and_mde_has_80_percent_power():
    big = ItemDesign(plw=PAPER_PLW_LEVELS, seeds=4, items={f"b{i}": 1000 for i in range(6)})
    start = time.perf_counter()
    power = approximate_item_power(big, PAPER_ITEM_EFFECT)
    smallest = item_mde(big, PAPER_ITEM_EFFECT)
    assert time.perf_counter() - start < 1.0
    assert 0.9 < power <= 1 and cell_df(big) == 37
    assert approximate_item_power(big, replace(PAPER_ITEM_EFFECT, curvature=-smallest)) == pytest.approx(
        0.8, abs=1e-3
    )
    # Fewer seeds or items never gain power; one seed of four PLW levels leaves a t test with 1 df.
    fewer = approximate_item_power(replace(big, seeds=1), PAPER_ITEM_EFFECT)
    assert fewer < approximate_item_power(replace(big, seeds=2), PAPER_ITEM_EFFECT) < power
    tiny = ItemDesign(plw=(0.0, 1e-2, 1e-1, 1.0), seeds=1, items={"a": 12})
    assert cell_df(tiny) == 1 and item_mde(tiny, PAPER_ITEM_EFFECT) == float("inf")


def test_budget_is_planned_not_timed():
    big = ItemDesign(plw=PAPER_PLW_LEVELS, seeds=4, items={f"b{i}": 1000 for i in range(6)})
    assert budgeted_item_power(big, PAPER_ITEM_EFFECT, budget_s=20) is None  # seconds per fit
    tiny = ItemDesign(plw=L5, seeds=1, items={"a": 10})
    result = budgeted_item_power(tiny, PAPER_ITEM_EFFECT, n_sims=6, budget_s=5, min_sims=5)
    assert result == simulate_item_power(tiny, PAPER_ITEM_EFFECT, n_sims=6)
    assert budgeted_item_power(tiny, PAPER_ITEM_EFFECT, n_sims=6, budget_s=0.1, min_sims=5) is None


def test_pilot_estimate_recovers_the_truth_and_its_discordance():
    truth = replace(SPREAD_2, curvature=-2.0, cell_sd=0.15, logits={"a": 0.5, "b": 1.0})
    design = ItemDesign(plw=(0.0, 1e-3, 1e-2, 1e-1, 2.463e-1, 1.0), seeds=2, items={"a": 250, "b": 250})
    frame = simulate_items(design, truth, np.random.default_rng(3))
    effect = estimate_from_pilot(frame, "sim")
    assert effect.item_sd == pytest.approx(2.0, abs=0.3)
    assert effect.curvature == pytest.approx(-2.0, abs=1.0)
    assert effect.logit("b") - effect.logit("a") == pytest.approx(0.5, abs=0.4)
    seen, implied = effect.discordance["observed"], effect.discordance["implied"]
    assert seen == pytest.approx(observed_discordance(frame)) and implied == pytest.approx(seen, abs=0.03)
    assert implied_discordance(truth, frame) == pytest.approx(seen, abs=0.03)
    assert "pilot sim" in effect.source
    # Items as pilots find them (spread 20): the Laplace fit overstates the spread somewhat (25-28 in
    # simulations of this size), and the model still reproduces the disagreement.
    wide = replace(PAPER_ITEM_EFFECT, curvature=-6.0)
    frame = simulate_items(design, wide, np.random.default_rng(0))
    effect = estimate_from_pilot(frame, "sim")
    assert 15 < effect.item_sd < 35 and effect.curvature < 0
    assert effect.discordance["implied"] == pytest.approx(effect.discordance["observed"], abs=0.02)


def test_search_ranks_item_level_candidates_by_cost():
    design = ItemDesign(plw=L5, seeds=1, items={"a": 100, "b": 100})
    available = {"a": 1000, "b": 300}

    def cost(d):
        return d.cells * (60 + 0.1 * sum(d.items.values()))

    effect = replace(PAPER_ITEM_EFFECT, curvature=-4.0)
    ranked, frontier = search(design, effect, cost, available, 0.8, 0.05, approximate_item_power)
    assert ranked and all(c.power >= 0.8 for c in ranked)
    assert [c.cost_s for c in ranked] == sorted(c.cost_s for c in ranked)
    assert all(c.design.items["b"] <= 300 for c in ranked)
    assert approximate_item_power(ranked[0].design, effect) == pytest.approx(ranked[0].power)
    # A tenth of the paper's gains: no design of up to ten seeds reaches it.
    tiny = replace(effect, curvature=PAPER_ITEM_EFFECT.curvature / 10)
    assert not search(design, tiny, cost, available, 0.8, 0.05, approximate_item_power)[0]
