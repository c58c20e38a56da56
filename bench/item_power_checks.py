"""Check the item-level power simulation and its approximation on small designs (fits take ~0.1 s each).

Usage: .venv/bin/python bench/item_power_checks.py [--sims 400] [--workers 2] [--medium 100] [--only-medium]

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
CHECKS = [
    (
        "5 levels x 2 seeds, 2 x 30 items",
        ItemDesign(plw=L5, seeds=2, items={"a": 30, "b": 30}),
        {"curvature": 0.0},
    ),
    (
        "5 levels x 2 seeds, 2 x 30 items",
        ItemDesign(plw=L5, seeds=2, items={"a": 30, "b": 30}),
        {"curvature": -2.0},
    ),
    (
        "7 levels x 2 seeds, 2 x 40 items",
        ItemDesign(plw=L7, seeds=2, items={"a": 40, "b": 40}),
        {"curvature": -1.5},
    ),
    (
        "4 levels x 3 seeds, 2 x 40 items, cell sd 0.3, seed sd 0.2",
        ItemDesign(plw=(0.0, 1e-2, 1e-1, 1.0), seeds=3, items={"a": 40, "b": 40}),
        {"curvature": -1.5, "cell_sd": 0.3, "seed_sd": 0.2},
    ),
]
MEDIUM = (
    "5 levels x 3 seeds, 3 x 150 items (default noise)",
    ItemDesign(plw=L5, seeds=3, items={"a": 150, "b": 150, "c": 150}),
    {"curvature": -0.8},
)
"""A design nearer real sizes (6,750 answers, ~1 s a fit): run with --medium N studies."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--medium", type=int, default=0, help="studies of the medium design (0: skip)")
    parser.add_argument("--only-medium", action="store_true")
    args = parser.parse_args()
    checks = [] if args.only_medium else [(*c, args.sims) for c in CHECKS]
    for name, design, change, n in checks + ([(*MEDIUM, args.medium)] if args.medium else []):
        effect = replace(PAPER_ITEM_EFFECT, **change)
        start = time.perf_counter()
        sim = simulate_item_power(design, effect, n, seed=1, workers=args.workers)
        wall = time.perf_counter() - start
        approx = approximate_item_power(design, effect)
        print(
            f"{name}, {change}: simulated {sim['power']:.3f} (± {sim['power_se']:.3f}), approximation "
            f"{approx:.3f}, difference {approx - sim['power']:+.3f}; w2 coverage {sim['coverage_b2']:.3f}; "
            f"median SE {sim['se_b2_median']:.3f}; {n} studies in {wall:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
