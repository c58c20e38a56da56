"""The forest plot of paired per-item differences: renders, saves, keeps its title inside, or is None."""

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg

from plw.analysis.paired import paired_comparisons
from plw.report.paired import forest_figure
from plw.report.plotting import save_figure


def _inside(fig) -> bool:
    # The check of tests/report/test_figure_titles.py.
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    box = fig._suptitle.get_window_extent(canvas.get_renderer())
    return box.x0 >= 0 and box.x1 <= fig.bbox.width


def item_frame(datasets=("d",), benchmarks=("arc_easy", "piqa", "winogrande"), levels=(0.0, 0.01, 1.0)):
    """One cell per (dataset, level); 40 items per benchmark with a spread of difficulty."""
    rng = np.random.default_rng(0)
    rows = []
    for dataset in datasets:
        for benchmark in benchmarks:
            difficulty = rng.normal(0.0, 1.5, 40)
            for plw in levels:
                right = difficulty + 0.5 * plw + rng.normal(0.0, 1.0, 40) > 0
                rows += [
                    {
                        "cell": f"{dataset},plw={plw}",
                        "dataset": dataset,
                        "plw": plw,
                        "benchmark": benchmark,
                        "item": str(i),
                        "metric": "acc",
                        "value": float(v),
                    }
                    for i, v in enumerate(right)
                ]
    return pd.DataFrame(rows)


def test_forest_figure_renders_and_saves(tmp_path):
    result = paired_comparisons(item_frame(), "acc", resamples=200)
    fig = forest_figure(result, 0.0)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    # 3 benchmarks and pooled, 2 levels each; pooled last and in bold.
    assert len(labels) == 8 and labels[-2:] == ["pooled  PLW 0.01", "pooled  PLW 1"]
    assert ax.get_yticklabels()[-1].get_fontweight() == "bold"
    assert _inside(fig)
    paths = save_figure(fig, tmp_path, "paired_forest")
    assert paths["png"].stat().st_size > 0 and paths["svg"].is_file()


def test_forest_title_fits_one_narrow_panel_and_several_datasets():
    one = paired_comparisons(item_frame(benchmarks=("arc_easy",), levels=(0.0, 1.0)), "acc")
    assert _inside(forest_figure(one, 1.0))
    many = paired_comparisons(item_frame(datasets=("alpaca", "dolly", "oasst")), "acc", resamples=200)
    fig = forest_figure(many, 0.0)
    assert len(fig.axes) == 3 and _inside(fig)


def test_forest_figure_is_none_without_rows():
    assert forest_figure({"rows": []}, 0.0) is None
    result = paired_comparisons(item_frame(levels=(0.001, 0.1)), "acc")
    assert forest_figure(result, 0.0) is None  # the low reference is PLW 0.001 here
    assert forest_figure(result, 0.001) is not None
