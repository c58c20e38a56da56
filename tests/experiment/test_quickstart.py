"""The quickstart study end to end on the real stories260K model: sweep, analysis, report, resume."""

import json

import pytest

from plw.experiment.quickstart import demo_study, quickstart_file

SMALL = [
    "datasets.synthetic.limit=16",
    "datasets.synthetic.eval_data.limit=8",
    "eval.limit=8",
    "eval.memorization_samples=2",
    "eval.retention_prompts=2",
    "eval.retention_max_new_tokens=8",
]


def test_shipped_quickstart_matches_the_issue():
    study = demo_study(None, None, [])
    assert quickstart_file().name == "quickstart.yaml"
    assert len(study.factors.plw) >= 4 and min(study.factors.plw) == 0 and max(study.factors.plw) == 1
    assert study.models["default"] == "smollm2-135m-instruct"
    assert study.train["lora"] and study.eval.retention_prompts > 0
    assert study.eval.tasks and all(t.startswith("synthetic_") for t in study.eval.tasks)


def test_model_swap_gets_its_own_directory(stories_path):
    study = demo_study(str(stories_path), None, [])
    assert study.models["default"] == str(stories_path)
    assert study.directory().name == "quickstart-stories260K"


@pytest.mark.slow
def test_demo_on_stories260k_end_to_end(stories_path, tmp_path, monkeypatch, plw_cli):
    monkeypatch.chdir(tmp_path)
    args = ["demo", "--model", stories_path, *SMALL, f"output_dir={tmp_path / 'qs'}", "factors.plw=[0,0.1,1]"]
    code, out, _ = plw_cli(*args)
    assert code in (0, None), out
    assert "report:" in out and "does not confirm or refute" in out
    # The item-level verdict (primary: the cells' per-item results exist) and the aggregate one.
    assert "analysis (item level, primary): " in out and "analysis (aggregate): " in out
    assert "quadratic term" in out and "paired per item, points vs PLW 0" in out
    html = tmp_path / "qs" / "report" / "report.html"
    assert html.is_file() and html.stat().st_size > 10_000
    results = (tmp_path / "qs" / "results.csv").read_text()
    assert "synthetic_lookup,exact_match" in results and "retention,kl_estimate" in results
    assert "power of this 3-cell design" in out
    # Rerunning resumes: every cell is already done, nothing is retrained.
    stamps = {p: p.stat().st_mtime for p in (tmp_path / "qs" / "cells").glob("*/result.json")}
    assert len(stamps) == 3
    plw_cli(*args)  # exits (SystemExit), whatever the code
    assert {p: p.stat().st_mtime for p in stamps} == stamps
    analysis = json.loads((tmp_path / "qs" / "report" / "analysis.json").read_text())
    assert "pooled" in analysis
