"""Simulated item frames with known truth, for the item-level model's tests and benchmark.

A study of trained models (cells: PLW levels x seeds) answering the same items of each benchmark,
drawn from the model `plw.analysis.item_glmm` fits:

    eta = b0 + b1 w + b2 w^2 + benchmark offset + u_item + v_cell (+ s_seed)
    binomial: y ~ Bernoulli(expit(eta));  gaussian: y = eta + N(0, residual_sd^2)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from plw.analysis.transform import expit, plw_to_w

DEFAULT_LEVELS = (0.0, 0.001, 0.01, 0.05, 0.1, 1.0)


def simulate_items(
    plw_levels=DEFAULT_LEVELS,
    n_seeds: int = 2,
    n_benchmarks: int = 3,
    n_items: int = 200,
    beta: tuple[float, float, float] = (0.5, 1.0, -1.0),
    item_sd: float = 1.5,
    cell_sd: float = 0.1,
    seed_sd: float = 0.0,
    benchmark_offsets: list[float] | None = None,
    family: str = "binomial",
    residual_sd: float = 1.0,
    rng: np.random.Generator | int | None = 0,
) -> pd.DataFrame:
    """One tidy item frame: a row per cell x benchmark x item.

    Args:
        plw_levels: PLW of the cells (each trained with every seed).
        n_seeds: seeds per PLW level.
        n_benchmarks, n_items: benchmarks, and items per benchmark.
        beta: (b0, b1, b2) on the link scale, curve in w = PLW ** log10(2).
        item_sd, cell_sd, seed_sd: random-intercept sds.
        benchmark_offsets: fixed offsets per benchmark (sum to 0 for sum coding); default evenly spaced.
        family: "binomial" (0/1 values) or "gaussian".
        residual_sd: Gaussian noise sd.
        rng: a generator or a seed.

    Returns:
        Columns cell, model, dataset, plw, seed, regularizer, benchmark, item, metric, value.
    """
    rng = np.random.default_rng(rng)
    levels = np.asarray(plw_levels, float)
    if benchmark_offsets is None:
        benchmark_offsets = np.linspace(-0.5, 0.5, n_benchmarks) if n_benchmarks > 1 else [0.0]
    cell_plw = np.repeat(levels, n_seeds)
    cell_seed = np.tile(np.arange(n_seeds), len(levels))
    n_cells = len(cell_plw)
    w = plw_to_w(cell_plw)
    cell_eta = beta[0] + beta[1] * w + beta[2] * w**2 + rng.normal(0, cell_sd, n_cells)
    cell_eta = cell_eta + rng.normal(0, seed_sd, n_seeds)[cell_seed]
    bench = np.repeat(np.arange(n_benchmarks), n_items)
    item_eta = np.asarray(benchmark_offsets, float)[bench] + rng.normal(0, item_sd, len(bench))
    eta = cell_eta[:, None] + item_eta[None, :]  # [n_cells, n_benchmarks * n_items]
    if family == "binomial":
        value = (rng.random(eta.shape) < expit(eta)).astype(float)
    else:
        value = eta + rng.normal(0, residual_sd, eta.shape)
    cells = np.array([f"plw={p:g},seed={s}" for p, s in zip(cell_plw, cell_seed, strict=True)])
    names = np.array([f"bench{b}" for b in range(n_benchmarks)])
    n_rows = value.size
    return pd.DataFrame(
        {
            "cell": np.repeat(cells, len(bench)),
            "model": "sim",
            "dataset": "sim",
            "plw": np.repeat(cell_plw, len(bench)),
            "seed": np.repeat(cell_seed.astype(str), len(bench)),
            "regularizer": "none",
            "benchmark": np.tile(names[bench], n_cells),
            "item": np.tile([f"i{i}" for i in range(n_items)] * n_benchmarks, n_cells),
            "metric": "acc" if family == "binomial" else "score",
            "value": value.reshape(n_rows),
        }
    )
