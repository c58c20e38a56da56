"""The whole report: HTML, Markdown, analysis.json; honest wording; hand-made tables."""

from __future__ import annotations

import base64
import json
import re

import pandas as pd
import pytest

from plw.analysis.results import normalize_results
from plw.analysis.simulate import simulate_results
from plw.analysis.summary import analyze_results
from plw.errors import PLWError
from plw.report.build import build_report
from plw.report.html import render_html
from plw.report.markdown import render_markdown


def test_outputs_are_written(built):
    root, result = built
    assert result["html"] == root / "report" / "report.html"
    analysis = json.loads(result["json"].read_text())
    assert analysis["pooled"]["quadratic"]["significant"]
    md = result["markdown"].read_text()
    assert "negative and significant" in md and "| fit | n |" in md
    for f in result["figures"]:
        assert f"]({f['png']})" in md
        assert (root / "report" / f["png"]).is_file() and (root / "report" / f["svg"]).is_file()


def test_html_is_self_contained_with_every_figure(built):
    root, result = built
    html = result["html"].read_text()
    images = re.findall(
        r'<figure id="fig-([^"]+)"><img alt="[^"]*" src="data:image/png;base64,([^"]+)"', html
    )
    assert [name for name, _ in images] == [f["name"] for f in result["figures"]]
    for _, data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    assert 'src="http' not in html and "<link" not in html  # nothing external
    assert "name: sim-study" in html  # study.yaml
    assert "statsmodels" in html and "matplotlib" in html  # software versions
    assert html.count('class="sortable"') >= 4


def test_non_significant_quadratic_is_said_plainly():
    results = normalize_results(
        simulate_results(curvature=0.0, seed=3, n_benchmarks=3, plw_levels=(0.0, 0.01, 0.1, 1.0)), "flat.csv"
    )
    analysis = analyze_results(results, bootstrap=0)
    assert not analysis["pooled"]["quadratic"]["significant"]
    md = render_markdown(analysis, [], "flat")
    assert "not significant" in md and "do not show that PLW matters" in md
    assert "negative and significant" not in md
    assert "not significant" in render_html(analysis, [], "flat", None, {"python": "3"})


def test_hand_edited_minimal_table_file_with_histories_and_out(tmp_path):
    rows = [
        (p, b, v)
        for p, vals in ((0.0, (0.30, 0.52)), (0.01, (0.36, 0.57)), (0.1, (0.41, 0.60)), (1.0, (0.33, 0.55)))
        for b, v in zip(("arc_easy", "piqa"), vals, strict=True)
    ]
    df = pd.DataFrame(rows, columns=["plw", "task", "value"]).assign(metric="acc_norm")
    path = tmp_path / "edited.csv"
    df.to_csv(path, index=False)
    hist = {
        "plw=0.1,model=default,dataset=default,seed=0,reg=none": [
            {"step": 1, "prompt_loss": 2.0, "completion_loss": 1.0},
            {"step": 2, "prompt_loss": 1.9, "completion_loss": 0.9},
        ]
    }
    result = build_report(path, bootstrap=0, histories=hist)
    assert result["html"] == tmp_path / "edited_report" / "report.html"
    assert [f["name"] for f in result["figures"]] == ["pooled", "benchmarks-default", "relative", "losses"]
    assert "No study.yaml found" in result["html"].read_text()
    assert result["analysis"]["pooled"]["quadratic"] is not None
    other = build_report(path, out=tmp_path / "elsewhere", bootstrap=0, histories={})
    assert other["html"].parent == tmp_path / "elsewhere"


def test_bad_input_is_a_plw_error(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("plw,task,metric,value\nx,arc_easy,acc,0.5\n")
    with pytest.raises(PLWError, match="column 'plw'"):
        build_report(path)
