"""`plw power`'s item-level part: effect specs, a pilot's per-item data, the budget, CLI and JSON."""

import json

import numpy as np
import pandas as pd
import pytest
from support import ALPACA, STORIES

from plw.analysis.item_power import PAPER_ITEM_EFFECT, ItemDesign, ItemEffect, simulate_items
from plw.analysis.item_power_approx import approximate_item_power
from plw.analysis.item_scale import mean_score
from plw.analysis.power import PAPER_EFFECT
from plw.experiment.item_power_design import answered_items, from_aggregate, item_power, resolve_item_effect


def study_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        f"""
name: s
output_dir: {tmp_path / "study"}
models: {{m: {STORIES}}}
datasets: {{d: {ALPACA}}}
factors: {{plw: [0, 0.1, 1], model: [m], dataset: [d], seed: [0, 1]}}
eval: {{tasks: [synthetic], limit: 30}}
"""
    )
    return path


def test_effect_specs():
    # `paper`: the reported ~2-point gain, on the item logit scale of the default item spread.
    assert resolve_item_effect("paper") is PAPER_ITEM_EFFECT and PAPER_ITEM_EFFECT.item_sd == 20
    gain = mean_score(PAPER_ITEM_EFFECT.default_logit, 20) - mean_score(
        PAPER_ITEM_EFFECT.default_logit + PAPER_ITEM_EFFECT.curvature * 0.652**2, 20
    )
    assert gain == pytest.approx(0.0186, abs=0.001)
    # A number is a curvature of scores, as the aggregate model reads it: -0.2 is the paper's.
    assert resolve_item_effect("-0.2").curvature == pytest.approx(PAPER_ITEM_EFFECT.curvature)
    # A pilot without per-item data: its aggregate curve, on the item logit scale.
    scaled = from_aggregate(PAPER_EFFECT)
    assert scaled.curvature == pytest.approx(PAPER_ITEM_EFFECT.curvature * 4.284 / 0.2, rel=1e-6)
    assert "no per-item data" in scaled.source


def test_only_benchmarks_answered_right_or_wrong_enter_the_item_level_design():
    items = {"arc_easy": 5, "truthfulqa_mc2": 5, "truthfulqa_mc1": 5, "synthetic:lookup": 5, "wmt16-de-en": 5}
    assert set(answered_items(items)) == {"arc_easy", "truthfulqa_mc1", "synthetic:lookup"}


def test_pilot_with_items_gives_its_effect(tmp_path, monkeypatch):
    truth = ItemEffect(curvature=-2.0, item_sd=2.0, cell_sd=0.1)
    design = ItemDesign(plw=(0.0, 1e-2, 1e-1, 2.463e-1, 1.0), seeds=2, items={"arc_easy": 200, "piqa": 200})
    frame = simulate_items(design, truth, np.random.default_rng(5))
    items = frame.rename(columns={"benchmark": "task"}).assign(metric="acc_norm")
    # A continuous metric of the same items is not an answer right or wrong: left out.
    items = pd.concat([items, items.assign(metric="margin", value=0.3)], ignore_index=True)
    monkeypatch.setattr("plw.analysis.items.find_items", lambda path, results: items)
    monkeypatch.setattr("plw.analysis.results.load_results", lambda path: None)
    effect = resolve_item_effect(str(tmp_path))
    assert effect.curvature == pytest.approx(-2.0, abs=1.0) and effect.item_sd == pytest.approx(2.0, abs=0.3)
    assert effect.discordance["implied"] == pytest.approx(effect.discordance["observed"], abs=0.03)
    with pytest.raises(Exception, match="--effect-dataset other"):
        resolve_item_effect(str(tmp_path), "other")


def test_item_power_is_simulated_within_the_budget_else_approximated():
    tiny = ItemDesign(plw=(0.0, 1e-1, 2.463e-1, 1.0), seeds=2, items={"a": 10})
    simulated = item_power(tiny, PAPER_ITEM_EFFECT, n_sims=10, budget_s=10)
    assert simulated["label"] == "simulated (10 studies)" and simulated["power_se"] is not None
    approx = item_power(tiny, PAPER_ITEM_EFFECT, n_sims=10, budget_s=0)
    assert approx["label"] == "approximation" and approx["n_sims"] == 0
    assert approx["power"] == approx["approximate_power"] == approximate_item_power(tiny, PAPER_ITEM_EFFECT)
    assert approx["df"] == 5 and approx["mde80"] > 0.2


def test_cli_prints_both_models_labelled_and_json_carries_both(tmp_path, plw_cli):
    path = study_file(tmp_path)
    code, out, _ = plw_cli("power", path, "--sims", "10", "--workers", "1")
    assert code == 0, out
    assert out.index("item-level model") < out.index("aggregate model")
    assert "simulated (10 studies)" in out and "item logit scale" in out
    _, out, _ = plw_cli("power", path, "--sims", "10", "--item-budget", "0", "--json", "--search")
    data = json.loads(out)
    assert data["result"]["label"] == "simulated (10 studies)"
    assert data["item"]["result"]["label"] == "approximation"
    assert data["item"]["effect"]["curvature"] == PAPER_ITEM_EFFECT.curvature
    assert data["item"]["search"]["target"] == 0.8
