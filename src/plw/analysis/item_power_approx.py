"""Power of the item-level model without simulation: Rasch information per cell, then a cell-level GLS.

With many items a cell's ability (its logit shift b1 w + b2 w^2 + v_cell + v_seed) is measured from
its answers like a Rasch person parameter: the information is the sum over items of p (1 - p), and
with item difficulties drawn from N(logit_b, item_sd^2) its expectation is n_b E_u[p (1 - p)]
(plw.analysis.item_scale.mean_pq). So a cell's estimated ability has sampling variance V_c = 1 / sum_b n_b
E_u[p (1 - p)], and the curve is a regression of abilities on w, w^2 (+ model effects) with
covariance diag(cell_sd^2 + V_c) + seed_sd^2 [same model and seed]. Its GLS covariance gives SE(b2);
the power of the one-sided detection (significant and negative) follows from a noncentral t with the
cell-level df `fit_items` tests w^2 with (cells - cell-level fixed effects), or a normal (`z_test`).
Items are shared by all cells, so their difficulties cancel from comparisons of cells; that is why
item_sd enters only through p (1 - p).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, stats

from plw.analysis.item_power import ItemDesign, ItemEffect, cell_layout
from plw.analysis.item_scale import mean_pq


def ability_variance(design: ItemDesign, effect: ItemEffect) -> np.ndarray:
    """[C] sampling variance of each cell's ability, 1 / sum_b n_b E_u[p (1 - p)], in `cell_layout` order."""
    w = cell_layout(design)[1]
    levels, where = np.unique(w, return_inverse=True)  # cells of one PLW level share their information
    shift = effect.curvature * (levels - effect.vertex_w) ** 2  # [L]
    logits = np.array([effect.logit(b) for b in design.items])  # [B]
    counts = np.array(list(design.items.values()), dtype=float)  # [B]
    info = mean_pq(shift[:, None] + logits[None, :], effect.item_sd) @ counts  # [L]
    return 1.0 / info[where]


def cell_covariance(design: ItemDesign, effect: ItemEffect) -> tuple[np.ndarray, np.ndarray]:
    """The cell-level regression: design matrix X [C, 3 + models - 1] and covariance of abilities [C, C]."""
    _, w, model, unit = cell_layout(design)
    models = (model[:, None] == np.arange(1, design.models)[None, :]).astype(float)  # treatment-coded
    x = np.column_stack([np.ones_like(w), w, w**2, models])
    cov = effect.seed_sd**2 * (unit[:, None] == unit[None, :])
    cov = cov + np.diag(effect.cell_sd**2 + ability_variance(design, effect))
    return x, cov


def expected_se_b2_items(design: ItemDesign, effect: ItemEffect) -> float:
    """SE of the w^2 coefficient: the GLS of cell abilities, sqrt([(X' S^-1 X)^-1]_22)."""
    x, cov = cell_covariance(design, effect)
    xs = np.linalg.solve(cov, x)
    return float(np.sqrt(np.linalg.pinv(x.T @ xs)[2, 2]))


def cell_df(design: ItemDesign) -> int:
    """The df of `fit_items`' t test of w^2: cells minus cell-level fixed effects (Intercept, w, w2, and
    model effects; one dataset per fit). Seeds are a random effect there and take none."""
    return design.cells - 3 - (design.models - 1)


def power_of(curvature: float, se: float, alpha: float, df: int | None) -> float:
    """P(estimate significant at alpha and negative) for an estimate ~ curvature + se * (t_df, or z
    when df is None); 0 when df < 1 (no test)."""
    delta = curvature / se
    if df is None:
        return float(stats.norm.cdf(-stats.norm.ppf(1 - alpha / 2) - delta))
    if df < 1:
        return 0.0
    return float(stats.nct.cdf(-stats.t.ppf(1 - alpha / 2, df), df, delta))


def approximate_item_power(
    design: ItemDesign, effect: ItemEffect, alpha: float = 0.05, z_test: bool = False
) -> float:
    """Power of the negative-curvature test of the item-level model, without simulation.

    Args:
        z_test: score a Wald z test instead of `fit_items`' t test with `cell_df` df.
    """
    df = None if z_test else cell_df(design)
    return power_of(effect.curvature, expected_se_b2_items(design, effect), alpha, df)


def item_mde(
    design: ItemDesign, effect: ItemEffect, alpha: float = 0.05, power: float = 0.8, z_test: bool = False
) -> float:
    """Smallest |curvature| (a peak, with `effect`'s vertex and noise) detected with `power`; inf if none.

    The standard error depends on the curvature through p (1 - p), so this solves the power equation
    rather than scaling one standard error.
    """
    from dataclasses import replace

    def gap(a: float) -> float:
        return approximate_item_power(design, replace(effect, curvature=-a), alpha, z_test) - power

    hi = 1.0
    while gap(hi) < 0:
        hi *= 2
        if hi > 64:  # beyond this the extreme cells answer nothing right: no design of these items sees it
            return math.inf
    return float(optimize.brentq(gap, 0.0, hi, xtol=1e-4))
