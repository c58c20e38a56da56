"""Shared plotting helpers: the PLW axis, colours, and saving a figure as PNG and SVG.

Figures are built with `matplotlib.figure.Figure` directly (not pyplot), which renders with the Agg
canvas, needs no display and keeps no global state between reports.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from plw.analysis.transform import plw_to_w
from plw.files import write_atomic

PLW_TICKS = (0.0, 1e-3, 1e-2, 0.1, 1.0)
"""Labelled PLW values; on the w axis they fall at 0, 0.125, 0.25, 0.5 and 1."""
PLW_TICK_LABELS = ("0", "1e-3", "0.01", "0.1", "1")


def new_figure(n_panels: int = 1, ncols: int = 1, panel_size=(4.0, 3.0)) -> tuple[Figure, list]:
    """A figure with `n_panels` axes on a grid of `ncols` columns (unused grid cells removed)."""
    ncols = max(1, min(ncols, n_panels))
    nrows = int(np.ceil(n_panels / ncols))
    fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows), layout="constrained")
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(n_panels)]
    return fig, axes


def suptitle(fig: Figure, text: str, fontsize: float = 12.0) -> None:
    """A figure title wrapped to the figure's width, so a one-panel figure never cuts it off."""
    # An average glyph of the default sans-serif font is about 0.55 em wide.
    chars = max(int(fig.get_figwidth() * 72 / (0.55 * fontsize)), 10)
    fig.suptitle(textwrap.fill(text, chars), fontsize=fontsize)


def plw_axis(ax, levels=None) -> None:
    """Put PLW on the x axis of a plot drawn against w = PLW ** log10(2).

    The w scale is the model's own, shows PLW 0, and spreads the log-spaced levels evenly; ticks are
    labelled in PLW. Study levels, when given, are marked as minor ticks.
    """
    ax.set_xlim(-0.03, 1.03)
    ax.set_xticks([plw_to_w(p) for p in PLW_TICKS])
    ax.set_xticklabels(PLW_TICK_LABELS)
    ax.tick_params(axis="x", labelsize=8)
    if levels is not None:
        ax.set_xticks([plw_to_w(p) for p in levels], minor=True)
    ax.set_xlabel("PLW (axis scaled as PLW^log10 2)")
    ax.grid(True, alpha=0.3)


def colors(n: int) -> list:
    """n distinguishable colours."""
    cmap = colormaps["tab10" if n <= 10 else "viridis"]
    return [cmap(i if n <= 10 else i / max(n - 1, 1)) for i in range(n)]


def save_figure(fig: Figure, directory: Path, name: str) -> dict[str, Path]:
    """Write `name`.png (150 dpi) and `name`.svg into `directory`.

    Returns:
        {"png": path, "svg": path}.
    """
    paths = {ext: directory / f"{name}.{ext}" for ext in ("png", "svg")}
    # Atomic, so a report cut off never shows half an image; no fsync: a figure is cheap to redo.
    write_atomic(paths["png"], lambda tmp: fig.savefig(tmp, dpi=150, format="png"), fsync=False)
    # The constrained layout is solved on every save and dominates the cost; the PNG save has fixed
    # the positions, so the SVG reuses them.
    fig.set_layout_engine("none")
    write_atomic(paths["svg"], lambda tmp: fig.savefig(tmp, format="svg"), fsync=False)
    return paths
