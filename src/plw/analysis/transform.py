"""The PLW transform, the squeeze of scores off {0, 1}, and the vertex of the fitted quadratic.

The paper models scores against w = PLW ** log10(2) rather than PLW itself: the levels it sweeps
are roughly log-spaced, and this power maps them onto [0, 1] almost evenly while keeping PLW 0 at
w 0 (a log would send it to minus infinity). PLW 0.1 maps to w 0.5 and PLW 1 to w 1.
"""

from __future__ import annotations

import math

import numpy as np

LOG10_2 = math.log10(2.0)
"""The exponent of the transform: w = PLW ** LOG10_2."""


def plw_to_w(plw):
    """Map PLW in [0, 1] to the modelling scale w = PLW ** log10(2).

    Args:
        plw: a float or an array of floats in [0, 1].

    Returns:
        w, of the same shape (a float for a float).
    """
    out = np.power(np.asarray(plw, dtype=float), LOG10_2)
    return float(out) if out.ndim == 0 else out


def w_to_plw(w):
    """Invert `plw_to_w`: PLW = w ** (1 / log10(2)); w below 0 maps to PLW 0.

    Args:
        w: a float or an array of floats.

    Returns:
        PLW, of the same shape (a float for a float).
    """
    arr = np.clip(np.asarray(w, dtype=float), 0.0, None)
    out = np.power(arr, 1.0 / LOG10_2)
    return float(out) if out.ndim == 0 else out


def squeeze(y, n: int | None = None):
    """Move scores in [0, 1] off the bounds so a beta likelihood is finite.

    Smithson & Verkuilen (2006): y' = (y * (n - 1) + 0.5) / n, with n the number of observations in
    the fit. It shrinks every score towards 0.5 by a factor (n - 1) / n, so 0 becomes 0.5 / n and 1
    becomes 1 - 0.5 / n, and leaves the ordering unchanged.

    Args:
        y: scores in [0, 1] (array-like).
        n: the sample size; defaults to len(y).

    Returns:
        The squeezed scores as a float array.
    """
    arr = np.asarray(y, dtype=float)
    n = arr.size if n is None else n
    if n < 1:
        return arr
    return (arr * (n - 1) + 0.5) / n


def logit(p):
    """Log-odds, elementwise."""
    p = np.asarray(p, dtype=float)
    return np.log(p) - np.log1p(-p)


def expit(x):
    """Inverse logit, elementwise."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def vertex(b1: float, b2: float) -> float:
    """The w at which b1 * w + b2 * w ** 2 is stationary: -b1 / (2 b2); NaN when b2 is 0."""
    if b2 == 0 or not np.isfinite(b1) or not np.isfinite(b2):
        return float("nan")
    return -b1 / (2.0 * b2)


def vertex_form_to_coefs(a: float, h: float, k: float) -> tuple[float, float, float]:
    """Expand a * (w - h) ** 2 + k into (b0, b1, b2) of b0 + b1 w + b2 w ** 2.

    The paper states its fitted curve in vertex form (-4.284 (w - 0.652) ** 2 + 0.781); this gives
    the coefficients a regression reports, so the two can be compared.
    """
    return a * h * h + k, -2.0 * a * h, a


def critical_plw(b1: float, b2: float, observed: tuple[float, float] | None = None) -> dict:
    """The critical PLW: the vertex in w, mapped back to PLW, clipped to [0, 1] and flagged.

    Args:
        b1: the linear coefficient on w.
        b2: the quadratic coefficient on w ** 2.
        observed: the smallest and largest PLW in the data, for the out-of-range flag.

    Returns:
        A dict with `critical_w` (the raw vertex), `critical_plw` (mapped and clipped), `clipped`
        (the vertex lay outside w in [0, 1]), `outside_observed_range` and `is_minimum` (b2 > 0,
        so the curve has a trough there rather than a peak).
    """
    w_star = vertex(b1, b2)
    if not np.isfinite(w_star):
        return {
            "critical_w": None,
            "critical_plw": None,
            "clipped": False,
            "outside_observed_range": False,
            "is_minimum": False,
        }
    plw_star = w_to_plw(min(max(w_star, 0.0), 1.0))
    lo, hi = observed if observed is not None else (0.0, 1.0)
    raw_plw = w_to_plw(w_star) if w_star > 0 else (0.0 if w_star == 0 else -1.0)
    return {
        "critical_w": float(w_star),
        "critical_plw": float(plw_star),
        "clipped": bool(w_star < 0 or w_star > 1),
        "outside_observed_range": bool(raw_plw < lo or raw_plw > hi),
        "is_minimum": bool(b2 > 0),
    }


def w_interval_to_plw(lo_w: float, hi_w: float) -> list[float]:
    """Map an interval on the w scale to PLW, clipping both ends to [0, 1] (the map is monotone)."""
    return [float(w_to_plw(min(max(v, 0.0), 1.0))) for v in (lo_w, hi_w)]
