"""Length-controlled win rate, as AlpacaEval 2.0 defines it (Dubois et al., 2024).

Judges prefer longer answers, so a raw win rate rewards verbosity. AlpacaEval 2.0 fits a logistic
regression of each item's preference on the length difference between the model's output and the
reference and reads the fitted win rate at zero difference:

    logit P(model preferred on item i) = theta + phi * tanh((len_model_i - len_ref_i) / sd)

with sd the standard deviation of the length differences over the items. The length-controlled
win rate is sigmoid(theta), and its standard error comes from theta's by the delta method. With one
model against one reference, AlpacaEval's instruction-difficulty term (estimated across many
models) is not identifiable and is left out. Preferences may be soft (a judge's probability); the
fit is a binomial GLM with fractional responses and the binomial variance (scale 1).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np


def length_feature(model_lengths: Sequence[float], reference_lengths: Sequence[float]) -> np.ndarray:
    """tanh of the length differences over their standard deviation [n]; zeros when all are equal."""
    diff = np.asarray(model_lengths, dtype=float) - np.asarray(reference_lengths, dtype=float)
    sd = float(diff.std())
    return np.tanh(diff / sd) if sd > 0 else np.zeros_like(diff)


def length_controlled_win_rate(
    preferences: Sequence[float], model_lengths: Sequence[float], reference_lengths: Sequence[float]
) -> tuple[float, float]:
    """(win rate at zero length difference, its standard error), both fractions in [0, 1].

    Args:
        preferences: P(model better) per item, in [0, 1] (0.5 is a tie).
        model_lengths, reference_lengths: output lengths per item (AlpacaEval uses characters).

    A preference that is the same everywhere (all 0, all 1) leaves nothing to regress: it is returned
    with a standard error of 0.
    """
    import statsmodels.api as sm

    y = np.asarray(preferences, dtype=float)
    if len(y) == 0:
        return float("nan"), float("nan")
    if np.ptp(y) == 0 or len(y) < 3:
        return float(y.mean()), 0.0 if np.ptp(y) == 0 else float("nan")
    x = length_feature(model_lengths, reference_lengths)
    exog = np.column_stack([np.ones_like(x), x]) if np.ptp(x) > 0 else np.ones((len(y), 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fractional responses: statsmodels warns, the fit is right
        fit = sm.GLM(y, exog, family=sm.families.Binomial()).fit(scale=1.0)
    theta, se_theta = float(fit.params[0]), float(fit.bse[0])
    rate = 1.0 / (1.0 + math.exp(-theta))
    return rate, rate * (1.0 - rate) * se_theta
