"""Figures of the extra-factor analyses: PLW curves per level side by side, and the two-weight surface.

Each function takes a result of `plw.analysis.interaction.interaction` or
`plw.analysis.surface.surface` (as stored in the analysis dict) and returns a matplotlib Figure, or
None when the result has nothing to draw (a fit that could not be estimated).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from plw.analysis.surface import COMPLETION
from plw.analysis.transform import plw_to_w
from plw.report.figures import _band, _mark_critical
from plw.report.plotting import colors, new_figure, plw_axis, suptitle


def interaction_figure(scores: pd.DataFrame, result: dict) -> Figure | None:
    """One panel per level of the factor, side by side on a shared score axis, then all curves overlaid.

    Args:
        scores: the scores of the result's dataset (any regulariser; unregularised ones are drawn).
        result: one interaction result (per factor and dataset).
    """
    levels = result.get("per_level") or {}
    if not levels:
        return None
    factor = result["factor"]
    # Side by side; more than three levels wrap onto further rows of four panels.
    fig, axes = new_figure(len(levels) + 1, ncols=min(len(levels) + 1, 4), panel_size=(3.6, 3.0))
    for ax in axes[1:]:
        ax.sharey(axes[0])
    rows = scores[(scores["regularizer"] == "none") & scores["score"].notna()]
    palette = colors(len(levels))
    for ax, (tag, fit), color in zip(axes, levels.items(), palette, strict=False):
        mine = rows[rows[factor].astype(str) == tag]
        means = mine.groupby("plw", as_index=False)["score"].mean()
        ax.scatter(plw_to_w(means["plw"].to_numpy()), means["score"], s=16, color="0.25", zorder=3,
                   label="mean over benchmarks")  # fmt: skip
        _band(ax, fit["curve"], color, "fitted (average benchmark)")
        _mark_critical(ax, fit)
        ax.set_title(f"{_short(factor)} = {tag}", fontsize=10)
        plw_axis(ax, fit.get("plw_levels"))
        ax.legend(fontsize=6, loc="lower center")
    overlay = axes[-1]
    for (tag, fit), color in zip(levels.items(), palette, strict=True):
        _band(overlay, fit["curve"], color, tag)
    overlay.set_title("all levels", fontsize=10)
    plw_axis(overlay)
    overlay.legend(fontsize=7, title=_short(factor), title_fontsize=7)
    axes[0].set_ylabel("score")
    test = result.get("test") or {}
    p = test.get("lr_p_value")
    tail = "" if p is None else "; curves differ: " + ("p < 0.001" if p < 0.001 else f"LR p = {p:.3g}")
    suptitle(fig, f"{result['label']}: PLW curve per {factor}, 95% bands and critical PLW{tail}")
    return fig


def _short(factor: str) -> str:
    return factor.removeprefix("train.")


def surface_figure(result: dict) -> Figure | None:
    """The fitted score of the average benchmark over PLW and the completion weight, optimum marked."""
    grid = result.get("grid")
    if not grid or result.get("optimum") is None:
        return None
    fig, axes = new_figure(1, panel_size=(5.2, 4.0))
    ax = axes[0]
    w, c = np.asarray(grid["w"]), np.asarray(grid["c"])
    filled = ax.contourf(w, c, np.asarray(grid["fit"]).T, levels=14, cmap="viridis")
    fig.colorbar(filled, ax=ax, label="fitted score (average benchmark)")
    best, ci = result["optimum"], result["optimum_ci"]
    x, y = best["w"], best[COMPLETION]
    xerr = [[x - plw_to_w(ci["plw"][0])], [plw_to_w(ci["plw"][1]) - x]]
    yerr = [[y - ci[COMPLETION][0]], [ci[COMPLETION][1] - y]]
    label = "interior maximum" if result.get("interior_maximum") else "highest point (boundary)"
    ax.errorbar(x, y, xerr=np.clip(xerr, 0, None), yerr=np.clip(yerr, 0, None), fmt="*", ms=9,
                color="C3", ecolor="white", elinewidth=1.5, capsize=4, zorder=5,
                label=f"{label}, 95% CI")  # fmt: skip
    plw_axis(ax)
    ax.grid(False)
    ax.set_ylabel("completion loss weight")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7, loc="lower left")
    suptitle(fig, f"{result['label']}: score over PLW and completion weight (quadratic surface)")
    return fig
