"""What `plw power` needs from a study: its design, the items of its benchmarks, a cost per cell,
and (for `--effect STUDY_DIR`) the effect a pilot study measured.

Item counts come from the benchmark files the study would score (`eval.data_dir`, cut to
`eval.limit`); the synthetic suite's task families count as separate benchmarks, as the analysis
scores them. Cell cost is the mean wall time of the study's finished cells (what `plw status` uses
for its ETA), with the evaluation share scaled by the items scored.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from plw.analysis.power import Design, Effect
from plw.errors import PLWError
from plw.experiment.study import Study

log = logging.getLogger("plw.experiment")

CHECKS = 5
"""Candidates of a design search checked by full simulation, cheapest first."""

FALLBACK_ITEMS = 500
"""Items assumed for a benchmark whose rows cannot be read offline (hub-only tasks)."""


@dataclass
class StudyDesign:
    """A study's design for power analysis, the items each benchmark could supply, and notes."""

    design: Design
    """The design of `dataset`, the dataset with the most unregularised cells."""
    available: dict[str, int]
    datasets: list[str]
    notes: list[str]
    eval_share: float | None = None
    """Share of a finished cell's wall time spent on benchmarks (None: no finished cell)."""
    dataset: str = ""
    others: dict[str, Design] | None = None
    """The designs of the other datasets (include:/exclude: can make them differ)."""


def benchmark_items(study: Study) -> tuple[dict[str, int], dict[str, int], list[str]]:
    """(items scored per benchmark, items available per benchmark, notes)."""
    from plw.evaluation.tasks import expand_tasks, get_task
    from plw.evaluation.tasks.base import Settings

    scored: dict[str, int] = {}
    available: dict[str, int] = {}
    notes: list[str] = []
    data_dir = Path(study.eval.data_dir) if study.eval.data_dir else None
    for name in expand_tasks(study.eval.tasks) if study.eval.tasks else []:
        try:
            rows = get_task(name).load(Settings(data_dir=data_dir))
        except Exception as err:  # hub-only or unreadable offline: assume a size, and say so
            notes.append(f"{name}: items unknown offline ({type(err).__name__}); assumed {FALLBACK_ITEMS}")
            rows = [{}] * FALLBACK_ITEMS
        if name == "synthetic":
            # Each task family is a benchmark of its own in the analysis (plw.analysis.scores).
            limited = Counter(r["task"] for r in rows[: study.eval.limit or len(rows)])
            for family, n in Counter(r["task"] for r in rows).items():
                available[f"synthetic:{family}"] = n
                if limited[family]:
                    scored[f"synthetic:{family}"] = limited[family]
            continue
        available[name] = len(rows)
        scored[name] = min(len(rows), study.eval.limit or len(rows))
    if not scored:
        raise PLWError("eval.tasks: the study scores no benchmarks: there is no effect to detect")
    return scored, available, notes


def _finished_runs(study: Study) -> list[dict]:
    from plw.experiment.celldir import read_result

    cells = study.directory() / "cells"
    runs = [(read_result(d) or {}).get("run") or {} for d in cells.iterdir()] if cells.is_dir() else []
    return [r for r in runs if r.get("wall_time_s")]


def study_design(study: Study) -> StudyDesign:
    """The per-dataset design of a study (regularised cells are not part of the PLW fit)."""
    items, available, notes = benchmark_items(study)
    runs = _finished_runs(study)
    seconds, share = None, None
    if runs:
        seconds = sum(r["wall_time_s"] for r in runs) / len(runs)
        share = sum((r.get("eval_time_s") or 0.0) / r["wall_time_s"] for r in runs) / len(runs)
    else:
        notes.append("no finished cells yet: costs are in cells x items, not seconds")
    designs = _dataset_designs(study, items, seconds, notes)
    main = max(designs, key=lambda name: designs[name].cells)
    others = {name: d for name, d in designs.items() if name != main}
    return StudyDesign(designs[main], available, list(designs), notes, share, main, others)


def _dataset_designs(study: Study, items: dict[str, int], seconds, notes: list[str]) -> dict[str, Design]:
    """Per dataset, the PLW levels, seeds and models of the cells the study runs (after include:
    and exclude:), without regularised cells, which are not part of the PLW fit."""
    from plw.experiment.cells import expand

    cells = [c for c in expand(study) if c.regularizer == "none"]
    designs = {}
    for name in dict.fromkeys(c.dataset for c in cells):
        mine = [c for c in cells if c.dataset == name]
        levels = tuple(sorted({c.plw for c in mine}))
        seeds, models = len({c.seed for c in mine}), len({c.model for c in mine})
        if len(levels) * seeds * models != len(mine):
            notes.append(f"dataset {name}: an unbalanced grid ({len(mine)} cells); treated as the full cross")
        designs[name] = Design(plw=levels, seeds=seeds, items=items, models=models, cell_seconds=seconds)
    if not designs:
        raise PLWError("factors.regularizer: the study has no cell without a regulariser to fit PLW on")
    return designs


def cost_model(base: StudyDesign):
    """Seconds (or, with no finished cell, item-weighted cells) for a candidate design per dataset."""
    ref_items = sum(base.design.items.values())

    def cost(design: Design) -> float:
        scale = sum(design.items.values()) / ref_items
        if base.design.cell_seconds is None:
            return design.cells * (1.0 + scale)  # unknown split: training and evaluation alike
        share = base.eval_share or 0.0
        return design.cells * base.design.cell_seconds * ((1 - share) + share * scale)

    return cost


def pilot_effect(study_dir: Path, dataset: str | None = None) -> Effect:
    """The effect a pilot study measured: its fitted curve, benchmark levels and residual noise.

    Args:
        study_dir: a study directory or results file.
        dataset: which dataset's fit (default: the only one, else the first with a negative w^2).
    """
    from plw.analysis.design import prepare
    from plw.analysis.glmm import fit_beta
    from plw.analysis.results import load_results
    from plw.analysis.scores import select_scores

    scores, _ = select_scores(load_results(study_dir))
    names = sorted(scores["dataset"].unique())
    if dataset is not None and dataset not in names:
        raise PLWError(f"--effect-dataset {dataset}: not in {study_dir} (datasets: {', '.join(names)})")
    fits = {}
    for name in [dataset] if dataset else names:
        data = prepare(scores[scores["dataset"] == name], name)
        if not data.fittable or not data.quadratic:
            continue
        fits[name] = (data, fit_beta(data, lr_test=False))
    if not fits:
        raise PLWError(f"{study_dir}: no dataset with 3 or more PLW levels to fit a curve to")
    name = next((n for n, (_, f) in fits.items() if f.params["w2"] < 0), next(iter(fits)))
    data, fit = fits[name]
    return _effect_from_fit(f"{study_dir} ({name})", fit)


def _effect_from_fit(label: str, fit) -> Effect:
    b0, b1, b2 = (float(fit.params[k]) for k in ("Intercept", "w", "w2"))
    w0 = min(max(-b1 / (2 * b2), 0.0), 1.0) if b2 != 0 else 0.5
    peak = b0 + b1 * w0 + b2 * w0**2
    phi = float(fit.extra["precision_phi"])
    return Effect(
        curvature=b2,
        vertex_w=w0,
        logits={b: peak + off for b, off in fit.benchmark_offsets.items()},
        default_logit=peak,
        residual=1.0 / (1.0 + phi),
        source=(
            f"pilot {label}: fitted {b2:+.3f} (w - {w0:.3f})^2 on the logit scale, residual beta "
            f"precision {phi:.0f} (kept whatever the items: the pilot scored every cell on the same items)"
            + ("" if math.isfinite(phi) else "; precision not finite")
        ),
    )


def resolve_effect(spec: str, pilot_dataset: str | None = None) -> Effect:
    """`paper`, a number (a curvature, with the paper's vertex and level), or a pilot study directory."""
    from dataclasses import replace

    from plw.analysis.power import PAPER_EFFECT

    if spec == "paper":
        return PAPER_EFFECT
    try:
        value = float(spec)
    except ValueError:
        value = None
    if value is not None:
        if not math.isfinite(value):
            raise PLWError(f"--effect {spec}: a curvature must be a finite number")
        source = f"curvature {value:g} given; vertex, level and noise as the paper's"
        return replace(PAPER_EFFECT, curvature=value, source=source)
    path = Path(spec)
    if not path.exists():
        raise PLWError(f"--effect {spec}: not 'paper', a curvature, or a pilot study directory / results")
    return pilot_effect(path, pilot_dataset)


def _other(design: Design, effect: Effect, alpha: float) -> dict:
    """Another dataset's design: its levels and approximate power (no quadratic with < 3 levels)."""
    from plw.analysis.power import approximate_power

    quadratic = len(design.plw) >= 3
    return {
        "plw": list(design.plw),
        "cells": design.cells,
        "approximate_power": approximate_power(design, effect, alpha) if quadratic else None,
    }


def power_analysis(
    study: Study,
    effect_spec: str = "paper",
    *,
    n_sims: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
    workers: int = 1,
    search_target: float | None = None,
    pilot_dataset: str | None = None,
    item_budget_s: float | None = None,
) -> dict:
    """Everything `plw power` prints: the design, and for the item-level model (primary) and the
    aggregate model each the effect, power and a design search.

    Args:
        item_budget_s: seconds of item-level fits to spend (None: item_power_design.BUDGET_S).

    Returns:
        {design, dataset, others, datasets, notes, alpha, the aggregate model's effect, result,
        search: {target, cost_unit, best, check, frontier} | None, and item: {effect, result,
        others, search} (plw.experiment.item_power_design.item_section)}.
    """
    from dataclasses import asdict

    from plw.analysis.power import approximate_power, simulate_power
    from plw.analysis.power_search import search
    from plw.experiment.item_power_design import BUDGET_S, item_section

    base = study_design(study)
    effect = resolve_effect(effect_spec, pilot_dataset)
    result = simulate_power(base.design, effect, n_sims, alpha, seed, workers)
    result["approximate_power"] = approximate_power(base.design, effect, alpha)
    result["label"] = f"simulated ({n_sims} studies)"
    budget = BUDGET_S if item_budget_s is None else item_budget_s
    sim = {"n_sims": n_sims, "seed": seed, "workers": workers, "budget_s": budget}
    out = {
        "design": {**asdict(base.design), "cells_per_dataset": base.design.cells},
        "dataset": base.dataset,
        "others": {name: _other(d, effect, alpha) for name, d in (base.others or {}).items()},
        "datasets": base.datasets,
        "notes": base.notes,
        "effect": {**asdict(effect), "critical_plw": effect.critical_plw},
        "alpha": alpha,
        "result": result,
        "search": None,
        "item": item_section(
            base, effect_spec, pilot_dataset, effect, alpha=alpha, search_target=search_target, **sim
        ),
    }
    if search_target is not None:
        cost = cost_model(base)
        ranked, frontier = search(base.design, effect, cost, base.available, search_target, alpha)
        rows = [{**asdict(c.design), "power": c.power, "cost": c.cost_s} for c in frontier]
        # The approximation weighs each benchmark by its own precision, which the fitted model (one
        # precision for all) does not: simulate the cheapest candidates until one really reaches it.
        best, check = None, None
        for cand in ranked[:CHECKS]:
            check = simulate_power(cand.design, effect, n_sims, alpha, seed, workers)
            check["label"] = f"simulated ({n_sims} studies)"
            best = cand
            if check["power"] >= search_target:
                break
        out["search"] = {
            "target": search_target,
            "cost_unit": "s per dataset" if base.design.cell_seconds else "cells x (1 + items / the study's)",
            "best": {**asdict(best.design), "power": best.power, "cost": best.cost_s} if best else None,
            "check": check,
            "frontier": rows,
        }
    return out
