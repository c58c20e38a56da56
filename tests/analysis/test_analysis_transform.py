"""The PLW transform, the squeeze and the vertex mapping."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plw.analysis.transform import (
    LOG10_2,
    critical_plw,
    plw_to_w,
    squeeze,
    vertex,
    vertex_form_to_coefs,
    w_interval_to_plw,
    w_to_plw,
)


def test_plw_0_1_maps_to_half_and_ends_are_fixed():
    assert plw_to_w(0.1) == pytest.approx(0.5)
    assert plw_to_w(0.0) == 0.0
    assert plw_to_w(1.0) == 1.0
    assert pytest.approx(0.30103, abs=1e-5) == LOG10_2


def test_w_to_plw_inverts_plw_to_w():
    plw = np.array([0.0, 5e-4, 2.236e-3, 0.01, 0.1, 0.2463, 1.0])
    assert np.allclose(w_to_plw(plw_to_w(plw)), plw)
    assert w_to_plw(-0.3) == 0.0  # below the domain: PLW 0, not NaN


def test_squeeze_is_smithson_verkuilen():
    y = np.array([0.0, 0.25, 1.0, 0.5])
    n = len(y)
    out = squeeze(y)
    assert np.allclose(out, (y * (n - 1) + 0.5) / n)
    assert out[0] == pytest.approx(0.5 / n) and out[2] == pytest.approx(1 - 0.5 / n)
    assert np.all((out > 0) & (out < 1))
    assert out[3] == 0.5  # the midpoint is fixed
    assert list(np.argsort(out)) == list(np.argsort(y))


def test_paper_curve_gives_critical_plw_0_242():
    # The paper's AlpacaDataShort fit: -4.284 (w - 0.652)^2 + 0.781.
    b0, b1, b2 = vertex_form_to_coefs(-4.284, 0.652, 0.781)
    assert b2 == -4.284 and b0 + b1 * 0.652 + b2 * 0.652**2 == pytest.approx(0.781)
    assert vertex(b1, b2) == pytest.approx(0.652)
    out = critical_plw(b1, b2, observed=(0.0, 1.0))
    assert round(out["critical_plw"], 3) == 0.242
    assert out["critical_plw"] == pytest.approx(0.652 ** (1 / math.log10(2)))
    assert not out["clipped"] and not out["outside_observed_range"] and not out["is_minimum"]


def test_vertex_beyond_one_is_clipped_and_flagged():
    b0, b1, b2 = vertex_form_to_coefs(-1.0, 1.4, 0.0)
    out = critical_plw(b1, b2, observed=(0.0, 1.0))
    assert out["critical_w"] == pytest.approx(1.4)
    assert out["critical_plw"] == 1.0 and out["clipped"] and out["outside_observed_range"]


def test_vertex_inside_unit_but_outside_observed_levels_is_flagged():
    _, b1, b2 = vertex_form_to_coefs(-2.0, 0.2, 0.0)  # PLW 0.2 ** 3.32 = 0.0048
    out = critical_plw(b1, b2, observed=(0.01, 1.0))
    assert not out["clipped"] and out["outside_observed_range"]
    assert out["critical_plw"] == pytest.approx(0.2 ** (1 / LOG10_2))


def test_convex_curve_is_a_minimum_and_flat_has_no_vertex():
    _, b1, b2 = vertex_form_to_coefs(2.0, 0.5, 0.0)
    assert critical_plw(b1, b2)["is_minimum"]
    assert critical_plw(1.0, 0.0)["critical_plw"] is None


def test_w_interval_maps_monotonically_and_clips():
    lo, hi = w_interval_to_plw(-0.2, 0.5)
    assert lo == 0.0 and hi == pytest.approx(0.1)
    assert w_interval_to_plw(0.4, 1.3)[1] == 1.0
