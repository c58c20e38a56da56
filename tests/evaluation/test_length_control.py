"""The length-controlled win rate against a case computed by hand."""

import math

import pytest

from plw.evaluation.length_control import length_controlled_win_rate, length_feature


def test_a_case_computed_by_hand():
    # Two longer answers preferred at 0.9, two shorter ones tied at 0.5. The length feature is +t for
    # the first pair and -t for the second, so the fit is saturated: theta + phi t = logit 0.9 = ln 9
    # and theta - phi t = 0, hence theta = ln 3 and the win rate at zero difference is 3 / 4, not
    # the raw mean preference 0.7.
    rate, se = length_controlled_win_rate([0.9, 0.9, 0.5, 0.5], [300, 300, 100, 100], [200] * 4)
    assert rate == pytest.approx(0.75, abs=1e-6)
    # Fisher information with weights mu (1 - mu): 0.09 and 0.25 per item, x = (1, +-t), so
    # var(theta) = 0.68 t^2 / (0.68^2 t^2 - 0.32^2 t^2) = 0.68 / 0.36, and the delta method gives
    # se = 0.75 * 0.25 * sqrt(0.68 / 0.36).
    assert se == pytest.approx(0.75 * 0.25 * math.sqrt(0.68 / 0.36), rel=1e-4)


def test_no_length_difference_gives_the_mean_preference():
    rate, se = length_controlled_win_rate([0.2, 0.6, 0.7, 0.9], [50] * 4, [50] * 4)
    assert rate == pytest.approx(0.6, abs=1e-6) and se > 0


def test_constant_preferences_and_the_feature():
    assert length_controlled_win_rate([1.0, 1.0, 1.0], [1, 2, 3], [0, 0, 0]) == (1.0, 0.0)
    feature = length_feature([10, 20, 30], [20, 20, 20])
    assert feature[0] == pytest.approx(-feature[2]) and feature[1] == 0
