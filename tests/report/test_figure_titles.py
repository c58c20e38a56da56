"""Figure titles fit inside their figures, however few panels a figure has."""

from matplotlib.backends.backend_agg import FigureCanvasAgg

from plw.report.figures import relative_figure
from plw.report.plotting import new_figure, suptitle


def _inside(fig) -> bool:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    box = fig._suptitle.get_window_extent(canvas.get_renderer())
    return box.x0 >= 0 and box.x1 <= fig.bbox.width


def test_relative_figure_title_fits_one_panel():
    rows = [
        {"dataset": "d", "model": "m", "plw": p, "regularizer": "none", "relative_score": s}
        for p, s in ((0.0, 0.2), (0.1, 0.9), (1.0, 0.5))
    ]
    assert _inside(relative_figure({"relative_scores": rows}))


def test_long_titles_wrap_to_the_figure_width():
    fig, _ = new_figure(1, panel_size=(3.0, 2.0))
    suptitle(fig, "a title far longer than a narrow one-panel figure can show on a single line of text")
    assert "\n" in fig._suptitle.get_text() and _inside(fig)
