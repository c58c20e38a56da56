"""`plw power` on study files: design and items read from the study, pilot effects, CLI errors."""

import pytest
from support import ALPACA, SHARED, STORIES, shared

from plw.analysis.simulate import simulate_results
from plw.experiment.power_design import pilot_effect, power_analysis, resolve_effect, study_design
from plw.experiment.study import load_study

BENCH = SHARED / "bench"


def study_file(tmp_path, tasks="[synthetic]", limit=30, seeds="[0, 1]"):
    path = tmp_path / "s.yaml"
    path.write_text(
        f"""
name: s
output_dir: {tmp_path / "study"}
models: {{m: {STORIES}}}
datasets: {{d: {ALPACA}}}
factors: {{plw: [0, 0.1, 1], model: [m], dataset: [d], seed: {seeds}}}
eval: {{tasks: {tasks}, limit: {limit}, data_dir: {BENCH}}}
"""
    )
    return path


def test_design_reads_factors_and_items(tmp_path):
    base = study_design(load_study(study_file(tmp_path)))
    assert base.design.plw == (0.0, 0.1, 1.0) and base.design.seeds == 2 and base.design.cells == 6
    # The synthetic suite's families are benchmarks of their own; the limit cuts the rows first.
    assert all(b.startswith("synthetic:") for b in base.design.items)
    assert sum(base.design.items.values()) == 30
    assert all(base.available[b] >= n for b, n in base.design.items.items())
    assert base.design.cell_seconds is None and any("no finished cells" in n for n in base.notes)


def test_real_benchmark_items(tmp_path):
    shared("bench")
    base = study_design(load_study(study_file(tmp_path, tasks="[arc_easy, piqa]", limit=5000)))
    assert base.design.items == {"arc_easy": 2376, "piqa": 1838}


def test_pilot_effect_recovers_a_known_curve(tmp_path):
    table = simulate_results(n_benchmarks=8, seeds=(0, 1, 2), curvature=-2.0, phi=2000, seed=4)
    study = tmp_path / "pilot"
    study.mkdir()
    table.to_csv(study / "results.csv", index=False)
    effect = pilot_effect(study)
    assert effect.curvature == pytest.approx(-2.0, abs=0.5)
    assert effect.vertex_w == pytest.approx(0.652, abs=0.1)
    assert "pilot" in effect.source


def test_effect_specs(tmp_path):
    assert resolve_effect("paper", {}).curvature == pytest.approx(-4.284)
    assert resolve_effect("-1.5", {}).curvature == -1.5
    with pytest.raises(Exception, match="--effect nowhere"):
        resolve_effect("nowhere", {})


def test_power_analysis_with_search(tmp_path):
    out = power_analysis(load_study(study_file(tmp_path)), "-3", n_sims=20, search_target=0.8)
    assert 0 <= out["result"]["power"] <= 1
    assert out["search"]["best"] is None or out["search"]["best"]["power"] >= 0.8


def test_cli_prints_power_and_rejects_bad_effect(tmp_path, plw_cli):
    path = study_file(tmp_path)
    code, out, err = plw_cli("power", str(path), "--sims", "20", "--effect", "-2")
    assert code in (0, None), err
    assert "power" in out and "smallest curvature" in out
    code, out, err = plw_cli("power", str(path), "--effect", str(tmp_path / "none"))
    assert code == 2
    assert "--effect" in err and "Traceback" not in err


def test_exclude_gives_each_dataset_its_own_design(tmp_path):
    path = study_file(tmp_path)
    text = path.read_text().replace("dataset: [d]", "dataset: [d, e]")
    text = text.replace(
        "datasets: {d: ",
        "datasets: {e: " + str(ALPACA) + ", d: ",
    )
    path.write_text(text + "exclude: [{dataset: e, plw: 0.1}]\n")
    base = study_design(load_study(path))
    assert base.dataset == "d" and base.design.plw == (0.0, 0.1, 1.0)
    assert base.others["e"].plw == (0.0, 1.0) and base.others["e"].cells == 4
    out = power_analysis(load_study(path), "-2", n_sims=10)
    assert out["others"]["e"]["approximate_power"] is None  # two levels: no quadratic test
