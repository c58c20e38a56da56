"""The report of a study with an extra factor: curves per level side by side, the surface, tables."""

from __future__ import annotations

from plw.analysis.simulate import simulate_factor_results
from plw.analysis.surface import COMPLETION
from plw.report.build import build_report

LEVELS = (0.0, 5e-4, 0.01, 0.1, 0.5, 1.0)


def test_report_shows_curves_per_level_and_the_surface(tmp_path):
    levels = {c: {"peak_logit": 0.3 - 2.0 * (c - 0.5) ** 2, "peak_w": 0.4 + 0.3 * c} for c in (0.0, 0.5, 1.0)}
    table = simulate_factor_results(COMPLETION, levels, plw_levels=LEVELS, n_benchmarks=4, curvature=-2.0)
    study = tmp_path / "study"
    study.mkdir()
    table.to_csv(study / "results.csv", index=False)
    paths = build_report(study, bootstrap=0)
    names = {f["name"] for f in paths["figures"]}
    curves = "interaction-train.completion_loss_weight-synthetic"
    assert {curves, "surface-synthetic"} <= names
    for name in (curves, "surface-synthetic"):
        png = study / "report" / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    markdown = paths["markdown"].read_text()
    assert "PLW x extra factor: curve per level" in markdown
    assert "PLW x completion weight: quadratic surface" in markdown
    assert "synthetic: PLW x train.completion_loss_weight" in markdown  # its verdict among the findings
    assert "curve per level of train.completion_loss_weight" in paths["html"].read_text()


def test_interaction_figure_panels_side_by_side_share_the_score_axis(tmp_path):
    from plw.analysis.results import load_results
    from plw.analysis.scores import select_scores
    from plw.analysis.summary import analyze_results
    from plw.report.extra import interaction_figure

    lr = "train.learning_rate"
    table = simulate_factor_results(lr, {1e-5: {"peak_w": 0.3}, 1e-4: {"peak_w": 0.8}}, plw_levels=LEVELS,
                                    n_benchmarks=4, curvature=-2.0)  # fmt: skip
    table.to_csv(tmp_path / "results.csv", index=False)
    results = load_results(tmp_path / "results.csv")
    result = analyze_results(results, bootstrap=0)["interactions"][lr]["synthetic"]
    fig = interaction_figure(select_scores(results)[0], result)
    panels = fig.axes
    assert len(panels) == 3  # one per level, then all curves overlaid
    assert [a.get_title() for a in panels] == [
        "learning_rate = 1e-05",
        "learning_rate = 0.0001",
        "all levels",
    ]
    assert panels[0].get_ylim() == panels[1].get_ylim() == panels[2].get_ylim()
    assert len(panels[2].lines) == 2 and panels[0].get_position().y0 == panels[1].get_position().y0
