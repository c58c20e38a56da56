"""Time the item-level binomial GLMM (`plw.analysis.item_glmm.fit_items`) on a study-sized frame.

Usage: .venv/bin/python bench/item_fit.py [--cells 40] [--benchmarks 6] [--items 1000] [--no-lr]

Simulates 10 PLW levels x (cells / 10) seeds answering benchmarks x items 0/1 items (240k rows by
default; item sd 1.5, cell sd 0.2, seed sd 0.1, w2 = -1), then prints the wall time of
- the baseline: one statsmodels GLM logistic fit of the same rows and fixed effects, no random effects;
- fit_items without the likelihood-ratio refit (one Laplace fit: the estimates and their covariance);
- fit_items as `analyze_items` runs it (two fits: with and without w2),
each with its ratio to the baseline, and the machine's load average (a busy 2-core machine slows
everything here; the figures are only comparable at similar load).
"""

from __future__ import annotations

import argparse
import os
import time

import pandas as pd
import statsmodels.api as sm

from plw.analysis.item_glmm import fit_items
from plw.analysis.item_simulate import simulate_items

LEVELS = (0.0, 0.001, 0.003, 0.01, 0.03, 0.05, 0.1, 0.3, 0.5, 1.0)


def _baseline(frame: pd.DataFrame) -> float:
    """Seconds for one logistic GLM of value on Intercept, w, w2 and sum-coded benchmarks."""
    from plw.analysis.item_data import prepare_items

    data = prepare_items(frame)
    x = pd.concat([data.exog, data.benchmark_exog], axis=1)
    start = time.perf_counter()
    sm.GLM(data.y, x, family=sm.families.Binomial()).fit()
    return time.perf_counter() - start


def _timed(frame: pd.DataFrame, lr_test: bool):
    start = time.perf_counter()
    fit = fit_items(frame, "binomial", "bench", lr_test=lr_test)
    return time.perf_counter() - start, fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=40, help="a multiple of 10 (10 PLW levels x seeds)")
    parser.add_argument("--benchmarks", type=int, default=6)
    parser.add_argument("--items", type=int, default=1000, help="items per benchmark")
    parser.add_argument("--no-lr", action="store_true", help="skip the two-fit (likelihood-ratio) timing")
    args = parser.parse_args()
    frame = simulate_items(LEVELS, n_seeds=args.cells // len(LEVELS), n_benchmarks=args.benchmarks,
                           n_items=args.items, cell_sd=0.2, seed_sd=0.1, rng=0)  # fmt: skip
    print(f"{len(frame):,} rows: {frame['cell'].nunique()} cells x {args.benchmarks} benchmarks x "
          f"{args.items} items; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")  # fmt: skip
    base = _baseline(frame)
    print(f"{'baseline: statsmodels GLM logistic, no random effects':56s} {base:6.2f} s")
    seconds, fit = _timed(frame, lr_test=False)
    print(f"{'fit_items, one Laplace fit':56s} {seconds:6.2f} s = {seconds / base:5.1f}x")
    if not args.no_lr:
        seconds, fit = _timed(frame, lr_test=True)
        print(
            f"{'fit_items with the w2 likelihood-ratio refit':56s} {seconds:6.2f} s = {seconds / base:5.1f}x"
        )
    x = fit.extra
    print(
        f"w2 {fit.params['w2']:.3f} (SE {fit.bse['w2']:.3f}, truth -1); item sd {x['item_sd']:.3f} (1.5), "
        f"cell sd {x['cell_sd']:.3f} (0.2), seed sd {x['seed_sd'] or 0:.3f} (0.1); "
        f"{'converged' if fit.converged else 'NOT converged: ' + fit.convergence}"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
