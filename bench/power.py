"""Benchmark `plw power`'s simulation: 200 studies of a 40-cell design, fast path vs `plw analyze`.

Usage: .venv/bin/python bench/power.py [--sims 200] [--workers 2] [--brute 20] [--one-fit]
The design is the issue's yardstick: 10 PLW levels x 4 seeds = 40 cells, 6 benchmarks of 200 items.
Prints the wall time of `simulate_power` with 1 and `--workers` processes, and the per-study time of
the brute-force path (each simulated study written as a results table and run through
`analyze_results`, bootstrap off, as `plw analyze --bootstrap 0` does) as a ratio to the fast path.

Then the item-level model on the same 40 cells with 1000 items per benchmark: what `plw power` runs
for it by default (`item_power`: the approximation, the mde, and simulated fits when they fit in the
budget) against the aggregate path's 200 simulated studies of that design, in this process; with
`--one-fit`, also the time of one `fit_items` fit of a simulated study (what a simulation would repeat).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from plw.analysis.power import PAPER_EFFECT, Design, simulate_power, simulate_scores, with_curvature
from plw.analysis.simulate import PAPER_PLW_LEVELS
from plw.analysis.summary import analyze_results


def brute_force(design: Design, effect, n: int) -> float:
    """Seconds per simulated study through the full analysis."""
    start = time.perf_counter()
    for s in range(n):
        scores = simulate_scores(design, effect, np.random.default_rng(s))
        table = scores.assign(task="lmeval:" + scores["benchmark"], metric="acc", value=scores["score"])
        table = table.drop(columns=["benchmark", "score"])
        table["cell"] = [f"plw={p:g},seed={k}" for p, k in zip(table["plw"], table["seed"], strict=True)]
        analyze_results(table.assign(study="bench"), bootstrap=0)
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--brute", type=int, default=20, help="studies for the brute-force baseline")
    parser.add_argument("--one-fit", action="store_true", help="also time one item-level fit (~40 s)")
    parser.add_argument("--skip-aggregate", action="store_true", help="only the item-level timing")
    args = parser.parse_args()
    if not args.skip_aggregate:
        aggregate(args)
    item_level(args)


def aggregate(args) -> None:
    design = Design(plw=PAPER_PLW_LEVELS, seeds=4, items={f"b{i}": 200 for i in range(6)})
    effect = with_curvature(PAPER_EFFECT, -1.0)
    print(f"design: {design.cells} cells x {len(design.items)} benchmarks; {args.sims} simulated studies")
    per_brute = brute_force(design, effect, args.brute)
    for workers in sorted({1, args.workers}):
        start = time.perf_counter()
        result = simulate_power(design, effect, args.sims, workers=workers)
        wall = time.perf_counter() - start
        print(
            f"simulate_power workers={workers}: {wall:.1f} s ({wall / args.sims * 1000:.0f} ms per study), "
            f"power {result['power']:.2f}; brute force {per_brute * 1000:.0f} ms per study "
            f"= {per_brute * args.sims / wall:.2f}x this run's time"
        )


def item_level(args) -> None:
    """`plw power`'s item-level part vs its aggregate part, 40 cells x 6 benchmarks x 1000 items."""
    from plw.analysis.item_power import PAPER_ITEM_EFFECT, analyse_items, simulate_items
    from plw.experiment.item_power_design import item_power

    design = Design(plw=PAPER_PLW_LEVELS, seeds=4, items={f"b{i}": 1000 for i in range(6)})
    start = time.perf_counter()
    item = item_power(design, PAPER_ITEM_EFFECT, n_sims=args.sims, workers=args.workers)
    item_s = time.perf_counter() - start
    start = time.perf_counter()
    agg = simulate_power(design, PAPER_EFFECT, args.sims, workers=args.workers)
    agg_s = time.perf_counter() - start
    mde = "none" if item["mde80"] is None else f"{item['mde80']:.3g}"
    print(
        f"item-level, {design.cells} cells x 6 benchmarks x 1000 items: {item_s:.2f} s ({item['label']}, "
        f"power {item['power']:.2f}, mde {mde}); aggregate path, {args.sims} simulated studies: "
        f"{agg_s:.1f} s (power {agg['power']:.2f}); together {item_s + agg_s:.1f} s, item/aggregate "
        f"{item_s / agg_s:.3f}x"
    )
    if args.one_fit:
        frame = simulate_items(design, PAPER_ITEM_EFFECT, np.random.default_rng(0))
        start = time.perf_counter()
        analyse_items(frame, PAPER_ITEM_EFFECT, 0.05)
        print(f"one fit_items fit of {len(frame)} answers: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
