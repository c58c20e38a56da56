"""Check the item-level power simulation and its approximation on small designs (fits take ~0.1 s each).

Usage: .venv/bin/python bench/item_power_checks.py [--sims 400] [--workers 2] [--set spread2|defaults|all]

Prints, for each design and curvature: the simulated power (share of studies with a significant
negative w^2 from `fit_items`) with its Monte Carlo error, the coverage of the true w^2 by the fit's
95% interval, and the approximation's power (`approximate_item_power`). With curvature 0 the
simulated power is the one-sided false-positive rate (alpha / 2 = 0.025 expected). docs/analysis.md
("Power of the item-level model") records a run; tests/analysis/test_item_power.py runs 100-study versions.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from plw.analysis.item_power import PAPER_ITEM_EFFECT, ItemDesign, simulate_item_power
from plw.analysis.item_power_approx import approximate_item_power

L5 = (0.0, 1e-2, 1e-1, 2.463e-1, 1.0)
L7 = (0.0, 2.236e-3, 1e-2, 5e-2, 1e-1, 2.463e-1, 1.0)
SPREAD_2 = {"item_sd": 2.0, "cell_sd": 0.1, "default_logit": 0.781}
"""Items of spread 2 (29% of answers differ between two cells): the harder case for the fit's
random effects and the approximation's Rasch information, as items near 50% carry most of it."""
SMALL = ItemDesign(plw=L5, seeds=2, items={"a": 30, "b": 30})
SMALL_20 = ItemDesign(plw=L5, seeds=2, items={"a": 100, "b": 100})
SETS = {
    "spread2": [
        ("5 levels x 2 seeds, 2 x 30 items", SMALL, {**SPREAD_2, "curvature": 0.0}),
        ("5 levels x 2 seeds, 2 x 30 items", SMALL, {**SPREAD_2, "curvature": -2.0}),
        (
            "7 levels x 2 seeds, 2 x 40 items",
            ItemDesign(plw=L7, seeds=2, items={"a": 40, "b": 40}),
            {**SPREAD_2, "curvature": -1.5},
        ),
        (
            "4 levels x 3 seeds, 2 x 40 items",
            ItemDesign(plw=(0.0, 1e-2, 1e-1, 1.0), seeds=3, items={"a": 40, "b": 40}),
            {**SPREAD_2, "curvature": -1.5, "cell_sd": 0.3, "seed_sd": 0.2},
        ),
        (
            "5 levels x 3 seeds, 3 x 150 items",
            ItemDesign(plw=L5, seeds=3, items={"a": 150, "b": 150, "c": 150}),
            {**SPREAD_2, "curvature": -0.8},
        ),
    ],
    # The defaults (item sd 20, cell sd 0.25, the paper's level): what the pilots measured.
    "defaults": [
        ("5 levels x 2 seeds, 2 x 100 items", SMALL_20, {"curvature": 0.0}),
        ("5 levels x 2 seeds, 2 x 100 items", SMALL_20, {"curvature": PAPER_ITEM_EFFECT.curvature}),
        ("5 levels x 2 seeds, 2 x 100 items", SMALL_20, {"curvature": -4.0}),
        (
            "4 levels x 3 seeds, 2 x 150 items",
            ItemDesign(plw=(0.0, 1e-2, 1e-1, 1.0), seeds=3, items={"a": 150, "b": 150}),
            {"curvature": -4.0, "seed_sd": 0.2},
        ),
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--set", choices=[*SETS, "all"], default="all")
    args = parser.parse_args()
    for name, design, change in [
        c for key, checks in SETS.items() if args.set in (key, "all") for c in checks
    ]:
        effect = replace(PAPER_ITEM_EFFECT, **change)
        start = time.perf_counter()
        sim = simulate_item_power(design, effect, args.sims, seed=1, workers=args.workers)
        wall = time.perf_counter() - start
        approx = approximate_item_power(design, effect)
        shown = {k: round(v, 3) for k, v in change.items()}
        print(
            f"{name}, {shown}: simulated {sim['power']:.3f} (± {sim['power_se']:.3f}), approximation "
            f"{approx:.3f}, difference {approx - sim['power']:+.3f}; w2 coverage {sim['coverage_b2']:.3f}; "
            f"median SE {sim['se_b2_median']:.3f}; {args.sims} studies in {wall:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
