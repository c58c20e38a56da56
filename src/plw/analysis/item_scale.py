"""Between the item logit scale and the scale of benchmark scores, for an item spread item_sd.

The item-level model's coefficients are conditional on the item (the typical item, u = 0); a
benchmark's score is the mean over items, m(eta) = E_u[expit(eta + u)], u ~ N(0, item_sd^2). A
small shift d on the item scale moves the score by d E_u[p (1 - p)], i.e. the score's logit by
d E_u[p (1 - p)] / (m (1 - m)). So a curvature on the logit scale of scores (the aggregate model's,
and what "a 2-point gain" means) is `item_curvature` on the item scale: about 1.6 times larger at
item_sd 2, 12 times at item_sd 20, where most items are answered alike by every cell.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize

_NODES, _WEIGHTS = np.polynomial.hermite.hermgauss(32)
_GRID = np.linspace(-40.0, 40.0, 1601)
"""Logits where p (1 - p) is not negligible (< 2e-17 beyond), every 0.05: the quadrature for wide
item distributions, where Gauss-Hermite nodes (spaced in sds) step over the narrow p (1 - p)."""


def normal_points(mean: np.ndarray, sd: float) -> tuple[np.ndarray, np.ndarray]:
    """Points and weights [..., K] for E[f(X)], X ~ N(mean, sd^2), mean of any shape [...].

    Gauss-Hermite for sd <= 1 (f varies on a scale of one logit or more); a fixed logit grid with
    normal weights for wider ones, such as the item spreads pilots measure (14-22), when f vanishes
    beyond the grid (as p (1 - p) and the disagreement of two answers do).
    """
    mean = np.asarray(mean, dtype=float)[..., None]
    if sd <= 1.0:
        weights = np.broadcast_to(_WEIGHTS / math.sqrt(math.pi), (*mean.shape[:-1], len(_NODES)))
        return mean + math.sqrt(2.0) * sd * _NODES, weights
    # Density x step, not normalised over the grid: the mass beyond it meets p (1 - p) ~ 0 there.
    weights = (
        np.exp(-0.5 * ((_GRID - mean) / sd) ** 2) * (_GRID[1] - _GRID[0]) / (sd * math.sqrt(2 * math.pi))
    )
    return np.broadcast_to(_GRID, weights.shape), weights


def mean_pq(logit, item_sd: float) -> np.ndarray:
    """E_u[p (1 - p)], p = expit(logit + u), u ~ N(0, item_sd^2), for an array of logits (same shape)."""
    points, weights = normal_points(logit, item_sd)
    p = 1.0 / (1.0 + np.exp(-points))
    return np.sum(p * (1 - p) * weights, axis=-1)


def mean_score(logit: float, item_sd: float) -> float:
    """m = E_u[expit(logit + u)]: the expected score of a benchmark whose typical item has `logit`."""
    from scipy.stats import norm

    if item_sd <= 1.0:
        points, weights = normal_points(logit, item_sd)
        return float(np.sum(weights / (1.0 + np.exp(-points))))
    # expit does not vanish at +40: integrate p (1 - p) (the density of the logistic) against the
    # normal cdf instead, m = E[Phi((logit + L) / item_sd)] over a standard logistic L.
    pq = 1.0 / (1.0 + np.exp(-_GRID)) * (1.0 - 1.0 / (1.0 + np.exp(-_GRID)))
    return float(np.sum(pq * norm.cdf((logit + _GRID) / item_sd)) * (_GRID[1] - _GRID[0]))


def item_logit(score_logit: float, item_sd: float) -> float:
    """The typical item's logit whose benchmark score is expit(score_logit)."""
    target = 1.0 / (1.0 + math.exp(-score_logit))
    return float(optimize.brentq(lambda x: mean_score(x, item_sd) - target, -60.0, 60.0, xtol=1e-8))


def item_curvature(score_curvature: float, logit: float, item_sd: float) -> float:
    """A curvature on the logit scale of scores, on the item logit scale at the typical item's `logit`."""
    m = mean_score(logit, item_sd)
    return float(score_curvature * m * (1 - m) / mean_pq(logit, item_sd))
