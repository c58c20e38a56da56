"""The item-level section of `plw analyze` / `plw report`: found beside the results, printed, in --json,
drawn as forest plots, and refused with one line (exit 2) when cells answered different items."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from plw.analysis.results import COLUMNS
from plw.analysis.summary import analyze_study
from plw.cli.main import app

LEVELS = (0.0, 0.1, 1.0)
BENCHMARKS = {"arc_easy": "acc_norm", "piqa": "acc_norm"}


def _study(tmp_path, n_items=60, seeds=2, rng_seed=0):
    """A results CSV and its `<stem>-items.csv.gz`: PLW 0.1 answers more items correctly."""
    rng = np.random.default_rng(rng_seed)
    difficulty = {b: rng.normal(0, 2, n_items) for b in BENCHMARKS}
    results, items = [], []
    for plw in LEVELS:
        for seed in range(seeds):
            cell = f"plw={plw:g},model=m,dataset=d,seed={seed},reg=none"
            bump = 0.6 if plw == 0.1 else 0.0
            for bench, metric in BENCHMARKS.items():
                p = 1 / (1 + np.exp(-(difficulty[bench] + bump)))
                y = (rng.random(n_items) < p).astype(float)
                items += [(cell, bench, str(i), metric, v, f"h{bench}{i}") for i, v in enumerate(y)]
                items += [
                    (cell, bench, str(i), "margin", v + rng.normal(0, 0.1), "") for i, v in enumerate(y)
                ]
                results.append(("s", cell, "m", "d", plw, seed, "none", bench, metric, y.mean(), ""))
    cols = list(COLUMNS)  # the results table schema (docs/results-schema.md)
    pd.DataFrame(results, columns=cols).to_csv(tmp_path / "s.csv", index=False)
    frame = pd.DataFrame(items, columns=["cell", "task", "item", "metric", "value", "item_hash"])
    (tmp_path / "s-items.csv.gz").write_bytes(gzip.compress(frame.to_csv(index=False).encode()))
    return tmp_path / "s.csv", frame


def test_item_level_is_found_beside_the_results_and_fitted(tmp_path):
    path, _ = _study(tmp_path)
    analysis = analyze_study(path, bootstrap=0)
    section = analysis["item_level"]
    fit = section["fits"]["d"]
    assert section["outcomes"] == BENCHMARKS
    assert fit["n_items"] == 120 and fit["n_cells"] == 6
    assert fit["quadratic"]["estimate"] < 0  # the bump at PLW 0.1 bends the curve down
    pooled = [r for r in section["paired"]["rows"] if r["benchmark"] == "pooled" and r["reference"] == 0.0]
    assert {r["plw"] for r in pooled} == {0.1, 1.0}
    up = next(r for r in pooled if r["plw"] == 0.1)
    assert up["diff"] > 0 and up["se"] < up["se_unpaired"]
    assert "margin" in section["secondary"]["fits"] and "margin" in section["secondary"]["paired"]


def test_analyze_cli_prints_both_verdicts_and_the_paired_table(tmp_path):
    path, _ = _study(tmp_path)
    result = CliRunner().invoke(app, ["analyze", str(path), "--bootstrap", "0"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "item-level d:" in result.output and "aggregate d:" in result.output
    assert "Paired per-item differences" in result.output and "pooled" in result.output
    data = json.loads(CliRunner().invoke(app, ["analyze", str(path), "--json", "--bootstrap", "0"]).output)
    assert data["item_level"]["fits"]["d"]["verdict"]


def test_different_item_sets_are_one_line_and_exit_2_after_the_aggregate(tmp_path):
    path, frame = _study(tmp_path)
    odd = frame["cell"].str.startswith("plw=1,") & (frame["task"] == "piqa") & (frame["item"] == "3")
    frame.loc[odd, "item"] = "999"
    (tmp_path / "s-items.csv.gz").write_bytes(gzip.compress(frame.to_csv(index=False).encode()))
    result = CliRunner().invoke(app, ["analyze", str(path), "--bootstrap", "0"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "Quadratic term and critical PLW" in result.output  # the aggregate analysis still ran
    error = [line for line in result.output.splitlines() if line.startswith("error")]
    assert len(error) == 1 and "plw=1," in error[0] and "piqa" in error[0]


@pytest.mark.parametrize("explicit", [False, True])
def test_report_draws_forest_plots(tmp_path, explicit):
    from plw.report.build import build_report

    path, _ = _study(tmp_path)
    items = tmp_path / "s-items.csv.gz"
    if explicit:  # an item file under another name, given with --items
        items = items.rename(tmp_path / "elsewhere.csv.gz")
    out = build_report(path, out=tmp_path / "report", bootstrap=0, items=items if explicit else None)
    names = {f["name"] for f in out["figures"]}
    assert {"paired-vs-plw-0", "paired-vs-plw-1"} <= names
    html = (tmp_path / "report" / "report.html").read_text()
    assert "Paired per-item comparisons" in html and "Item-level fits" in html
