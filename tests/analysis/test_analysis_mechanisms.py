"""Mechanism measures against PLW."""

from __future__ import annotations

import pytest

from plw.analysis.mechanisms import mechanism_table, mechanism_trends
from plw.analysis.results import normalize_results


def test_trends_follow_the_simulated_shapes(sim):
    results = normalize_results(sim(seeds=(0, 1)), "sim.csv")
    trends = {t["measure"]: t for t in mechanism_trends(results)[0]}
    assert set(trends) == {"weight_l2", "weight_rel_distance", "loss_rsd", "memorization_bleu", "retention"}
    assert trends["weight_rel_distance"]["spearman_rho"] > 0.8
    assert (
        trends["memorization_bleu"]["spearman_rho"] < 0 and trends["memorization_bleu"]["plw_at_min"] == 1.0
    )
    assert trends["loss_rsd"]["plw_at_min"] == 1.0


def test_table_averages_seeds_and_ignores_regularised_cells(sim):
    results = normalize_results(sim(seeds=(0, 1), regularizers=("dropout=0.1",)), "sim.csv")
    table = mechanism_table(results)
    rows = table[(table["measure"] == "weight_l2") & (table["plw"] == 0.0)]
    assert rows["n"].tolist() == [2]
    raw = results[
        (results["metric"] == "weight_l2") & (results["plw"] == 0.0) & (results["regularizer"] == "none")
    ]
    assert rows["mean"].iloc[0] == pytest.approx(raw["value"].mean())
