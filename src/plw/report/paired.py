"""The forest plot of paired per-item differences (plw.analysis.paired) against one reference level.

One panel per dataset; one row per (benchmark, PLW level) with the mean per-item difference from the
reference and its 95% interval, the benchmarks in name order, the pooled rows last, drawn larger on a
shaded band. A vertical line marks no difference; a row's colour is its PLW level's, and all panels
share one x range.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from plw.analysis.paired import POOLED
from plw.report.plotting import colors, new_figure, suptitle

ROW_HEIGHT = 0.24
"""Inches per forest row, so a study with many benchmarks gets a taller panel, not squashed rows."""


def forest_figure(result: dict, reference: float) -> Figure | None:
    """Differences from PLW `reference` with their 95% intervals, per dataset.

    Args:
        result: the dict of `plw.analysis.paired.paired_comparisons`.
        reference: the reference level (one of result["reference_levels"]' low or high values).

    Returns:
        The figure, or None when no row has this reference and a difference.
    """
    rows = [r for r in result.get("rows", []) if r["reference"] == reference and r["diff"] is not None]
    if not rows:
        return None
    datasets = sorted({r["dataset"] for r in rows})
    levels = sorted({r["plw"] for r in rows})
    palette = dict(zip(levels, colors(len(levels)), strict=True))
    tallest = max(sum(r["dataset"] == d for r in rows) for d in datasets)
    fig, axes = new_figure(len(datasets), ncols=2, panel_size=(5.2, 1.4 + ROW_HEIGHT * tallest))
    for ax, dataset in zip(axes, datasets, strict=True):
        _panel(ax, _ordered([r for r in rows if r["dataset"] == dataset]), palette)
        ax.set_title(f"dataset {dataset}", fontsize=10)
        ax.set_xlabel(f"difference from PLW {reference:g} ({result.get('metric_kind', 'score')})")
    # One x range for all panels, so datasets compare at a glance; the row labels name the levels.
    lows = [r["diff"] if r["ci"][0] is None else r["ci"][0] for r in rows] + [0.0]
    highs = [r["diff"] if r["ci"][1] is None else r["ci"][1] for r in rows] + [0.0]
    pad = 0.05 * (max(highs) - min(lows) or 1.0)
    for ax in axes:
        ax.set_xlim(min(lows) - pad, max(highs) + pad)
    suptitle(fig, f"Paired per-item differences from PLW {reference:g} with 95% intervals (pooled in bold)")
    return fig


def _ordered(rows: list[dict]) -> list[dict]:
    """Benchmarks by name with the pooled rows last; levels ascending within each."""
    return sorted(rows, key=lambda r: (r["benchmark"] == POOLED, r["benchmark"], r["plw"]))


def _panel(ax, rows: list[dict], palette: dict) -> None:
    """Draw rows top-down: row i at y = n - 1 - i."""
    n = len(rows)
    for i, r in enumerate(rows):
        y = n - 1 - i
        pooled = r["benchmark"] == POOLED
        if pooled:
            ax.axhspan(y - 0.5, y + 0.5, color="0.9", lw=0, zorder=0)
        lo, hi = r["ci"]
        xerr = None if lo is None else [[r["diff"] - lo], [hi - r["diff"]]]
        ax.errorbar(
            r["diff"],
            y,
            xerr=xerr,
            fmt="s" if pooled else "o",
            color=palette[r["plw"]],
            ms=6 if pooled else 4,
            lw=2.2 if pooled else 1.2,
            mec="black" if pooled else palette[r["plw"]],
            capsize=0,
            zorder=3,
        )
        # A thin rule where one benchmark's rows end and the next begin.
        if i and r["benchmark"] != rows[i - 1]["benchmark"]:
            ax.axhline(y + 0.5, color="0.75", lw=0.6, zorder=1)
    ax.axvline(0.0, color="0.2", lw=1.0, zorder=2)
    ax.set_yticks(range(n - 1, -1, -1))
    ax.set_yticklabels([f"{r['benchmark']}  PLW {r['plw']:g}" for r in rows], fontsize=7)
    for label, r in zip(ax.get_yticklabels(), rows, strict=True):
        if r["benchmark"] == POOLED:
            label.set_fontweight("bold")
    ax.set_ylim(-0.7, n - 0.3)
    ax.grid(True, axis="x", alpha=0.3)
