"""The cheapest design that reaches a target power: seeds, PLW levels and items per benchmark.

Every candidate is scored with an approximation without simulation (the aggregate model's expected
information, `approximate_power`, or the item-level model's Rasch information,
`plw.analysis.item_power_approx.approximate_item_power`: a few thousand candidates take a second) and
costed with the caller's per-cell time model; the cheapest ones at or above the target are then
checked by full simulation (`plw power` prints both).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from plw.analysis.power import Design, approximate_power

PLW_SETS: dict[int, tuple[float, ...]] = {
    4: (0.0, 1e-2, 1e-1, 1.0),
    5: (0.0, 2.236e-3, 2.463e-2, 2.463e-1, 1.0),
    6: (0.0, 1e-2, 2.463e-2, 1e-1, 2.463e-1, 1.0),
    8: (0.0, 5e-4, 2.236e-3, 1e-2, 5e-2, 1e-1, 2.463e-1, 1.0),
    10: (0.0, 5e-4, 2.236e-3, 1e-2, 2.463e-2, 5e-2, 1e-1, 2.463e-1, 5e-1, 1.0),
}
"""Candidate PLW levels: subsets of the paper's ten, spread over w = PLW ** log10(2), 0 and 1 kept."""

ITEM_STEPS = (25, 50, 100, 200, 400, 800, 1600, 3200)
SEEDS = (1, 2, 3, 4, 5, 6, 8, 10)


@dataclass(frozen=True)
class Candidate:
    design: Design
    power: float
    cost_s: float


def candidates(design: Design, available: dict[str, int]) -> list[Design]:
    """Designs around `design`: other seeds, PLW sets and items (capped at each benchmark's supply)."""
    level_sets = {design.plw, *PLW_SETS.values()}
    out = []
    for n in sorted({*ITEM_STEPS, *design.items.values()}):
        items = {b: min(n, available.get(b, n)) for b in design.items}
        for levels in level_sets:
            out += [replace(design, plw=tuple(levels), seeds=s, items=items) for s in SEEDS]
    return out


def search(
    design: Design,
    effect: Any,
    cost: Callable[[Design], float],
    available: dict[str, int],
    target: float = 0.8,
    alpha: float = 0.05,
    approximate: Callable[[Design, Any, float], float] = approximate_power,
) -> tuple[list[Candidate], list[Candidate]]:
    """Candidates with approximate power >= target, cheapest first, and the cheapest per seed count.

    Args:
        design: the study's own design (its models and benchmarks are kept).
        effect: the effect to detect (an `Effect`, or an `ItemEffect` with the item-level approximation).
        cost: seconds for a whole design (per dataset).
        available: items each benchmark has (a candidate never asks for more).
        approximate: power of (design, effect, alpha) without simulation, for the model searched for.

    Returns:
        (the candidates reaching the target, cheapest first; a short frontier for the table).
    """
    scored = []
    seen = set()
    for cand in candidates(design, available):
        key = (cand.plw, cand.seeds, tuple(sorted(cand.items.items())))
        if key in seen:
            continue
        seen.add(key)
        scored.append(Candidate(cand, approximate(cand, effect, alpha), cost(cand)))
    reaching = sorted((c for c in scored if c.power >= target), key=lambda c: c.cost_s)
    frontier = []
    for seeds in SEEDS:
        mine = [c for c in reaching if c.design.seeds == seeds]
        if mine:
            frontier.append(mine[0])
    return reaching, frontier
