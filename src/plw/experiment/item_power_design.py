"""The item-level half of `plw power`: its effect, its power and its design search.

The item-level model (plw.analysis.item_glmm) is the primary analysis: every study scores its
benchmarks per item. Its power is simulated (each study fitted with `fit_items`) when the fits of
`--sims` studies fit in a time budget, else the Rasch-information approximation is the figure, and
the output says which ("simulated (N studies)" or "approximation").
"""

from __future__ import annotations

import math
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from plw.analysis.item_power import PAPER_ITEM_EFFECT, ItemDesign, ItemEffect, budgeted_item_power
from plw.analysis.item_power_approx import approximate_item_power, cell_df, expected_se_b2_items, item_mde
from plw.analysis.item_scale import item_curvature, item_logit
from plw.analysis.power import Effect
from plw.errors import PLWError

BUDGET_S = 20.0
"""Seconds of item-level fits `plw power` spends by default (`--item-budget`)."""
MIN_SIMS = 100
"""Fewer simulated studies than this in the budget and the approximation is the figure (Monte Carlo
error up to 0.05 is as far as a simulated figure is worth more than the approximation's)."""


def resolve_item_effect(
    spec: str, pilot_dataset: str | None = None, aggregate: Effect | None = None
) -> ItemEffect:
    """`paper`, a curvature, or a pilot: its per-item data when it has them, else its aggregate fit.

    A number is a curvature on the logit scale of scores, as the aggregate model reads it, so one
    `--effect` is one effect for both models; it is converted to the item logit scale at the
    default item spread (plw.analysis.item_scale).

    Args:
        aggregate: the pilot's aggregate effect (plw.experiment.power_design.pilot_effect), used when
            the pilot has no per-item data.
    """
    if spec == "paper":
        return PAPER_ITEM_EFFECT
    try:
        value = float(spec)
    except ValueError:
        value = None
    if value is not None:
        curvature = item_curvature(value, PAPER_ITEM_EFFECT.default_logit, PAPER_ITEM_EFFECT.item_sd)
        source = (
            f"curvature {value:g} given on the logit scale of scores: {curvature:+.3g} on the item logit "
            f"scale at item sd {PAPER_ITEM_EFFECT.item_sd:g}; vertex, level and noise as for `paper`"
        )
        return replace(PAPER_ITEM_EFFECT, curvature=curvature, source=source)
    frame = pilot_items(Path(spec), pilot_dataset)
    if frame is not None:
        from plw.analysis.item_pilot import estimate_from_pilot

        return estimate_from_pilot(frame, f"{spec} ({frame['dataset'].iloc[0]})")
    if aggregate is None:
        raise PLWError(f"--effect {spec}: no per-item data and no aggregate fit to take the effect from")
    return from_aggregate(aggregate)


def pilot_items(path: Path, dataset: str | None):
    """A pilot's 0/1 answers as `fit_items` takes them, of `dataset` (default: its dataset with the
    most answers); None when the pilot has no per-item data (plw.analysis.items.find_items)."""
    from plw.analysis.item_pilot import binary_items
    from plw.analysis.items import find_items
    from plw.analysis.results import load_results

    items = find_items(path, load_results(path))
    frame = binary_items(items) if items is not None else None
    if frame is None or not len(frame):
        return None
    names = frame["dataset"].value_counts()
    if dataset is not None and dataset not in names.index:
        raise PLWError(
            f"--effect-dataset {dataset}: no per-item answers in {path} (datasets: {', '.join(names.index)})"
        )
    return frame[frame["dataset"] == (dataset or names.index[0])]


def from_aggregate(effect: Effect) -> ItemEffect:
    """An item effect from a pilot's aggregate fit: its curve and levels on the item logit scale at the
    default item spread, default cell noise (the aggregate fit cannot tell items from cells)."""
    sd = PAPER_ITEM_EFFECT.item_sd
    level = item_logit(effect.default_logit, sd)
    curvature = item_curvature(effect.curvature, level, sd)
    return replace(
        PAPER_ITEM_EFFECT,
        curvature=curvature,
        vertex_w=effect.vertex_w,
        logits={b: item_logit(v, sd) for b, v in effect.logits.items()},
        default_logit=level,
        source=(
            f"{effect.source.split(':')[0]} has no per-item data: its aggregate curvature "
            f"{effect.curvature:+.3f} is {curvature:+.3g} on the item logit scale at item sd {sd:g}; item "
            f"sd and cell sd defaults"
        ),
    )


def item_power(
    design: ItemDesign, effect: ItemEffect, *, alpha: float = 0.05, budget_s: float = BUDGET_S, **sim: Any
) -> dict:
    """The item-level figure: simulated when `n_sims` fits fit in `budget_s` (at least MIN_SIMS), else
    the approximation; both, the mde and the label are in the result.

    Args:
        sim: `plw.analysis.item_power.simulate_item_power`'s keywords (n_sims, seed, workers).

    Returns:
        {power, power_se, width_median, coverage_b2, se_b2_median, n_sims, method, label,
        approximate_power, se_b2_approx, mde80 (None: no curvature reaches 80%), df}.
    """
    approx = approximate_item_power(design, effect, alpha)
    result = None
    if len(design.plw) >= 3:
        min_sims = min(MIN_SIMS, sim.get("n_sims", 200))
        result = budgeted_item_power(design, effect, alpha=alpha, budget_s=budget_s, min_sims=min_sims, **sim)
    if result is None:
        result = {"power": approx, "power_se": None, "width_median": None, "coverage_b2": None,
                  "se_b2_median": None, "n_sims": 0, "method": "approximation"}  # fmt: skip
    label = f"simulated ({result['n_sims']} studies)" if result["n_sims"] else "approximation"
    return {
        **result,
        "label": label,
        "approximate_power": approx,
        "se_b2_approx": expected_se_b2_items(design, effect),
        "mde80": mde if math.isfinite(mde := item_mde(design, effect, alpha, 0.8)) else None,
        "df": cell_df(design),
    }


def item_search(base, effect: ItemEffect, target: float, alpha: float, **sim) -> dict:
    """The cheapest designs reaching `target` for the item-level model, checked by simulation in turn.

    Args:
        base: the study's `StudyDesign`.
        sim: n_sims, seed, workers, budget_s for the checks.

    Returns:
        {target, cost_unit, best, check, frontier} as the aggregate search's, `check` with its label.
    """
    from plw.analysis.power_search import search
    from plw.experiment.power_design import CHECKS, cost_model

    ranked, frontier = search(
        base.design, effect, cost_model(base), base.available, target, alpha, approximate_item_power
    )
    best, check = None, None
    for cand in ranked[:CHECKS]:
        best, check = cand, item_power(cand.design, effect, alpha=alpha, **sim)
        if check["power"] >= target:
            break
    return {
        "target": target,
        "cost_unit": "s per dataset" if base.design.cell_seconds else "cells x (1 + items / the study's)",
        "best": {**asdict(best.design), "power": best.power, "cost": best.cost_s} if best else None,
        "check": check,
        "frontier": [{**asdict(c.design), "power": c.power, "cost": c.cost_s} for c in frontier],
    }


def answered_items(items: dict[str, int]) -> dict[str, int]:
    """The benchmarks the item-level fit takes: those whose primary metric is 0/1 per item
    (plw.analysis.item_level; TruthfulQA-MC2's mass, BLEU and judge win rates are not answers)."""
    from plw.analysis.paired import BINARY_METRICS
    from plw.analysis.scores import primary_metric
    from plw.evaluation.tasks import get_task

    binary = set(BINARY_METRICS) | {"exact_match"}
    out = {}
    for name, n in items.items():
        try:  # multiple-choice tasks say which metrics they score; others are known by name
            metrics = set(getattr(get_task(name.split(":")[0]), "metrics", None) or binary)
        except Exception:
            metrics = binary
        if primary_metric(name, metrics) in binary or primary_metric(name.split(":")[0], metrics) in binary:
            out[name] = n
    return out


def item_section(
    base, spec: str, pilot_dataset, aggregate: Effect, *, alpha: float, search_target, **sim
) -> dict:
    """`plw power`'s item-level output: {effect, result, others, search, benchmarks}, or {note} when
    no benchmark of the study is scored 0/1 per item."""
    items = answered_items(base.design.items)
    if not items:
        return {"note": "no benchmark of the study is scored 0/1 per item: no item-level fit"}
    base = replace(
        base,
        design=replace(base.design, items=items),
        available={b: base.available[b] for b in items},
        others={name: replace(d, items=items) for name, d in (base.others or {}).items()},
    )
    effect = resolve_item_effect(spec, pilot_dataset, aggregate)
    others = {
        name: {
            "plw": list(d.plw),
            "cells": d.cells,
            "approximate_power": approximate_item_power(d, effect, alpha) if len(d.plw) >= 3 else None,
        }
        for name, d in base.others.items()
    }
    return {
        "benchmarks": items,
        "effect": {**asdict(effect), "critical_plw": effect.critical_plw},
        "result": item_power(base.design, effect, alpha=alpha, **sim),
        "others": others,
        "search": None if search_target is None else item_search(base, effect, search_target, alpha, **sim),
    }
