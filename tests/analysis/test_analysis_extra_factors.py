"""Extra factors in the analysis: loading their columns, PLW x factor interaction, the two-weight surface."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from plw.analysis.interaction import interaction
from plw.analysis.results import load_results
from plw.analysis.scores import select_scores
from plw.analysis.simulate import simulate_factor_results, simulate_results
from plw.analysis.summary import analyze_results
from plw.analysis.surface import COMPLETION, surface
from plw.analysis.transform import w_to_plw

LR = "train.learning_rate"
LEVELS = (0.0, 5e-4, 0.01, 0.1, 0.5, 1.0)


def lr_table(peaks: dict, seed: int = 0) -> pd.DataFrame:
    """Two or more learning rates, each with its own vertex on the w scale."""
    return simulate_factor_results(LR, {lr: {"peak_w": w} for lr, w in peaks.items()}, seed=seed,
                                   plw_levels=LEVELS, n_benchmarks=6, curvature=-2.0, phi=300)  # fmt: skip


def scores_of(table: pd.DataFrame, tmp_path) -> pd.DataFrame:
    """Through a CSV, as plw analyze reads a study: columns come back as text and are typed again."""
    table.to_csv(tmp_path / "results.csv", index=False)
    scores, _ = select_scores(load_results(tmp_path / "results.csv"))
    return scores


def test_factor_columns_load_typed_and_placed_after_regularizer(tmp_path):
    table = lr_table({1e-5: 0.5, 1e-4: 0.5})
    table["train.lora"] = np.where(table[LR] == 1e-5, "null", '{"r":8}')
    table.to_csv(tmp_path / "results.csv", index=False)
    loaded = load_results(tmp_path / "results.csv")
    columns = list(loaded.columns)
    assert columns[columns.index("regularizer") + 1 : columns.index("task")] == [LR, "train.lora"]
    assert loaded[LR].dtype == float and set(loaded[LR]) == {1e-5, 1e-4}
    assert set(loaded["train.lora"]) == {"null", '{"r":8}'}  # null is a level, not a missing value
    assert LR in select_scores(loaded)[0].columns


def test_different_curves_are_detected_with_each_levels_critical_plw(tmp_path):
    result = interaction(scores_of(lr_table({1e-5: 0.3, 1e-4: 0.8}), tmp_path), LR, "synthetic")
    assert result["test"]["significant"] and result["test"]["df"] == 2
    assert result["test"]["lr_p_value"] < 0.001 and result["test"]["wald_p_value"] < 0.001
    low, high = result["per_level"]["1e-05"], result["per_level"]["0.0001"]
    for fit, w in ((low, 0.3), (high, 0.8)):
        lo, hi = fit["critical_plw_ci"]
        assert lo <= w_to_plw(w) <= hi and fit["quadratic"]["negative"]
    assert low["critical_plw"] < high["critical_plw"]
    assert (
        len(low["curve"]["fit"]) == 41
        and "differ between the levels of train.learning_rate" in result["verdict"]
    )


def test_identical_curves_are_mostly_not_called_different(tmp_path):
    calls = [
        interaction(scores_of(lr_table({1e-5: 0.6, 1e-4: 0.6, 1e-3: 0.6}, seed=s), tmp_path), LR, "x")
        for s in range(8)
    ]
    significant = sum(r["test"]["significant"] for r in calls)
    assert significant <= 2  # 5% each; 8 studies
    assert all(r["test"]["df"] == 4 for r in calls)
    assert "do not show" in next(r["verdict"] for r in calls if not r["test"]["significant"])


def test_a_level_with_two_plw_levels_is_not_estimable(tmp_path):
    table = lr_table({1e-5: 0.5, 1e-4: 0.5})
    table = table[(table[LR] == 1e-5) | table["plw"].isin([0.0, 1.0])]
    result = interaction(scores_of(table, tmp_path), LR, "x")
    assert result["test"] is None and "level 0.0001 has 2 PLW level(s)" in result["not_estimable"][0]


def surface_table(c_peak: float, curvature_c: float = -2.0, seed: int = 0) -> pd.DataFrame:
    """PLW peaking at w 0.6, the completion weight adding curvature_c (c - c_peak)^2 on the logit scale."""
    levels = {c: {"peak_logit": 0.3 + curvature_c * (c - c_peak) ** 2} for c in (0.0, 0.25, 0.5, 0.75, 1.0)}
    return simulate_factor_results(COMPLETION, levels, seed=seed, plw_levels=LEVELS, n_benchmarks=6,
                                   curvature=-2.0, peak_w=0.6, phi=400)  # fmt: skip


def test_surface_finds_an_interior_optimum_with_its_interval(tmp_path):
    result = surface(scores_of(surface_table(0.5), tmp_path), "x")
    assert result["interior_maximum"] and result["kind"] == "maximum"
    best, ci = result["optimum"], result["optimum_ci"]
    assert ci["plw"][0] <= w_to_plw(0.6) <= ci["plw"][1]
    assert ci[COMPLETION][0] <= 0.5 <= ci[COMPLETION][1] and ci[COMPLETION][1] - ci[COMPLETION][0] < 0.5
    assert abs(best[COMPLETION] - 0.5) < 0.15 and result["share_interior"] > 0.9
    assert "interior maximum at PLW" in result["verdict"]


def test_surface_without_an_interior_maximum_says_so(tmp_path):
    outside = surface(scores_of(surface_table(1.8), tmp_path), "x")
    assert not outside["interior_maximum"] and outside["optimum"][COMPLETION] == pytest.approx(1.0)
    assert "no interior maximum" in outside["verdict"]
    saddle = surface(scores_of(surface_table(0.5, curvature_c=1.5), tmp_path), "x")
    assert saddle["kind"] == "saddle" and not saddle["interior_maximum"]
    assert saddle["optimum"][COMPLETION] in (pytest.approx(0.0), pytest.approx(1.0))


def test_analysis_adds_interactions_and_surface_only_when_factors_vary(tmp_path):
    plain = analyze_results(load_results_of(simulate_results(n_benchmarks=4), tmp_path), bootstrap=0)
    assert "interactions" not in plain and "surface" not in plain
    table = surface_table(0.5)
    both = analyze_results(load_results_of(table, tmp_path), bootstrap=0)
    assert set(both["interactions"]) == {COMPLETION} and set(both["surface"]) == {"synthetic"}
    assert both["surface"]["synthetic"]["interior_maximum"]
    # the one-dimensional fit keeps the completion weight as a nuisance effect
    assert any(t.startswith(f"{COMPLETION}[") for t in both["datasets"]["synthetic"]["coefficients"])
    json.dumps(both, allow_nan=False)
    lr_only = analyze_results(load_results_of(lr_table({1e-5: 0.3, 1e-4: 0.8}), tmp_path), bootstrap=0)
    assert set(lr_only["interactions"]) == {LR} and "surface" not in lr_only


def load_results_of(table: pd.DataFrame, tmp_path):
    table.to_csv(tmp_path / "results.csv", index=False)
    return load_results(tmp_path / "results.csv")
