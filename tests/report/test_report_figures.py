"""Individual figures: built from the analysis, saved as non-empty PNG and SVG."""

from __future__ import annotations

import json

from plw.report.plotting import save_figure
from plw.report.training import load_histories, loss_figure


def test_load_histories_reads_cells_and_skips_bad_files(tmp_path):
    good = tmp_path / "cells" / "plw=0.1,seed=0" / "train"
    bad = tmp_path / "cells" / "plw=1,seed=0" / "train"
    good.mkdir(parents=True)
    bad.mkdir(parents=True)
    (good / "log_history.json").write_text(
        json.dumps([{"step": 1, "prompt_loss": 2.0, "completion_loss": 1.0}])
    )
    (bad / "log_history.json").write_text("[{")
    histories, warnings = load_histories(tmp_path)
    assert list(histories) == ["plw=0.1,seed=0"]
    assert len(warnings) == 1 and "plw=1,seed=0" in warnings[0]


def test_loss_figure_from_a_mapping_colours_by_plw(tmp_path):
    hist = {
        "plw=0,x": [{"step": s, "prompt_loss": 3.0, "completion_loss": 2.0 - s / 100} for s in range(5)],
        "plw=1,x": [
            {"step": s, "prompt_loss": 3.0 - s / 10, "completion_loss": 2.0 - s / 50} for s in range(5)
        ],
        "no-plw-in-id": [{"step": 0, "loss": 1.0}],  # no prompt/completion losses: ignored
    }
    fig = loss_figure(hist, {})
    prompt_ax, completion_ax = fig.axes[:2]
    assert len(prompt_ax.lines) == 2 and len(completion_ax.lines) == 2
    assert prompt_ax.lines[0].get_color() != prompt_ax.lines[1].get_color()
    paths = save_figure(fig, tmp_path, "losses")
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths["png"].stat().st_size > 5000
    assert b"<svg" in paths["svg"].read_bytes()[:500]
    assert loss_figure({}, {}) is None


def test_report_figures_have_data(built):
    _, result = built
    names = [f["name"] for f in result["figures"]]
    assert names == ["pooled", "benchmarks-synthetic", "relative", "mechanisms", "losses"]
    for f in result["figures"]:
        from pathlib import Path

        png, svg = Path(f["png_path"]), Path(f["svg_path"])
        assert png.stat().st_size > 10_000, f["name"]
        assert svg.read_text().count("<path") > 20, f["name"]
