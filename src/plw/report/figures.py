"""Figures of the fitted PLW curves: per benchmark, pooled, and the relative aggregate score.

Each function takes the scores table and/or the analysis dict (plw.analysis.summary) and returns
a matplotlib Figure, or None when there is nothing to draw.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from plw.analysis.transform import expit, logit, plw_to_w, squeeze
from plw.report.plotting import colors, new_figure, plw_axis, suptitle


def _band(ax, curve: dict, color, label: str | None = None) -> None:
    ax.plot(curve["w"], curve["fit"], color=color, lw=1.8, label=label)
    ax.fill_between(curve["w"], curve["lo"], curve["hi"], color=color, alpha=0.2, lw=0)


def benchmark_figure(scores: pd.DataFrame, fit: dict) -> Figure | None:
    """Each benchmark's scores against PLW with the fitted curve and its 95% band.

    Args:
        scores: the fit's scores (one dataset, regularizer none).
        fit: the per-fit dict; its `benchmark_curves` are drawn when the fit succeeded.
    """
    benchmarks = sorted(scores["benchmark"].unique())
    if not benchmarks:
        return None
    fig, axes = new_figure(len(benchmarks), ncols=4, panel_size=(3.4, 2.7))
    curves = fit.get("benchmark_curves") or {}
    for ax, b in zip(axes, benchmarks, strict=True):
        rows = scores[(scores["benchmark"] == b) & scores["score"].notna()]
        ax.scatter(plw_to_w(rows["plw"].to_numpy()), rows["score"], s=14, color="0.25", zorder=3)
        if b in curves:
            _band(ax, curves[b], "C0")
        ax.set_title(b, fontsize=10)
        ax.set_ylabel("score")
        plw_axis(ax, sorted(rows["plw"].unique()))
        ax.set_xlabel("PLW")
    suptitle(fig, f"{fit['label']}: score against PLW, fitted curve and 95% band ({fit['backend']})")
    return fig


def _adjusted(scores: pd.DataFrame, fit: dict) -> pd.DataFrame:
    """Scores with each benchmark's fitted offset removed on the logit scale, averaged per PLW."""
    offsets = fit.get("benchmark_effects") or {}
    y = squeeze(scores["score"].to_numpy())
    adj = expit(logit(y) - scores["benchmark"].map(offsets).fillna(0.0).to_numpy())
    return (
        pd.DataFrame({"plw": scores["plw"].to_numpy(), "adj": adj})
        .groupby("plw", as_index=False)["adj"]
        .mean()
    )


def pooled_figure(scores: pd.DataFrame, analysis: dict) -> Figure | None:
    """Population curves per dataset and pooled, with the critical PLW and its interval marked."""
    fits = {**analysis.get("datasets", {})}
    if len(fits) > 1 and analysis.get("pooled"):
        fits["pooled"] = analysis["pooled"]
    fits = {k: f for k, f in fits.items() if f.get("curve")}
    if not fits:
        return None
    fig, axes = new_figure(len(fits), ncols=3, panel_size=(4.2, 3.2))
    for ax, (name, fit), color in zip(axes, fits.items(), colors(len(fits)), strict=True):
        rows = scores[scores["score"].notna() & (scores["regularizer"] == "none")]
        rows = rows if name == "pooled" else rows[rows["dataset"] == name]
        if name != "pooled" and len(rows):
            pts = _adjusted(rows, fit)
            ax.scatter(
                plw_to_w(pts["plw"].to_numpy()),
                pts["adj"],
                s=18,
                color="0.25",
                zorder=3,
                label="mean score, benchmark effect removed",
            )
        _band(ax, fit["curve"], color, "fitted (average benchmark)")
        _mark_critical(ax, fit)
        ax.set_title(f"{name}: {_short_verdict(fit)}", fontsize=10)
        ax.set_ylabel("score")
        plw_axis(ax, fit.get("plw_levels"))
        ax.legend(fontsize=7, loc="lower center")
    suptitle(fig, "Population curve and critical PLW")
    return fig


def _mark_critical(ax, fit: dict) -> None:
    crit = fit.get("critical_plw")
    if crit is None or fit.get("is_minimum"):
        return
    ax.axvline(plw_to_w(crit), color="C3", ls="--", lw=1.2, label=f"critical PLW {crit:.3g}")
    ci = fit.get("critical_plw_ci")
    if ci and None not in ci:
        ax.axvspan(plw_to_w(ci[0]), plw_to_w(ci[1]), color="C3", alpha=0.12, lw=0)


def _short_verdict(fit: dict) -> str:
    quad = fit.get("quadratic")
    if not quad:
        return "no quadratic test"
    p = quad["p_value"]
    ptxt = "p<0.001" if p < 0.001 else f"p={p:.3f}"
    return f"w² {quad['estimate']:.2f}, {ptxt}" + ("" if quad["significant"] else " (n.s.)")


def relative_figure(analysis: dict) -> Figure | None:
    """Relative aggregate score against PLW per (dataset, model); regularised cells as markers."""
    rel = pd.DataFrame(analysis.get("relative_scores") or [])
    if rel.empty:
        return None
    groups = list(rel.groupby(["dataset", "model"]))
    fig, axes = new_figure(len(groups), ncols=3, panel_size=(4.2, 3.2))
    for ax, ((dataset, model), g) in zip(axes, groups, strict=True):
        base = g[g["regularizer"] == "none"].groupby("plw", as_index=False)["relative_score"].mean()
        ax.plot(plw_to_w(base["plw"].to_numpy()), base["relative_score"], "o-", color="0.2", label="none")
        regs = sorted(r for r in g["regularizer"].unique() if r != "none")
        for reg, color, marker in zip(regs, colors(len(regs)), "s^vD<>phx*", strict=False):
            r = g[g["regularizer"] == reg].groupby("plw", as_index=False)["relative_score"].mean()
            ax.scatter(
                plw_to_w(r["plw"].to_numpy()), r["relative_score"], color=color, marker=marker, label=reg
            )
        ax.set_title(f"{dataset} / {model}", fontsize=10)
        ax.set_ylabel("relative aggregate score")
        ax.set_ylim(-0.05, 1.05)
        plw_axis(ax, sorted(g["plw"].unique()))
        ax.legend(fontsize=7)
    suptitle(fig, "Relative aggregate score (min-max per benchmark, averaged)")
    return fig
