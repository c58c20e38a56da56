"""Paired per-item comparisons: hand-computed tests and errors, and their behaviour over simulations."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from plw.analysis.paired import COLUMNS, paired_comparisons, paired_text_rows
from plw.analysis.paired_stats import MCNEMAR, SIGN_FLIP, sign_flip_p, unpaired_se
from plw.errors import PLWError


def item_frame(scores: dict, metric: str = "acc", dataset: str = "d", **extra) -> pd.DataFrame:
    """An item frame from {(benchmark, plw, seed): per-item values} (item i is the i-th value)."""
    rows = [
        {
            "cell": f"plw={plw},seed={seed}",
            "model": "m",
            "dataset": dataset,
            "plw": float(plw),
            "seed": str(seed),
            "regularizer": "none",
            "benchmark": benchmark,
            "item": str(i),
            "metric": metric,
            "value": float(v),
        }
        | extra
        for (benchmark, plw, seed), values in scores.items()
        for i, v in enumerate(values)
    ]
    return pd.DataFrame(rows)


def row(result, benchmark="b", plw=1.0, reference=0.0):
    (out,) = [
        r
        for r in result["rows"]
        if r["benchmark"] == benchmark and r["plw"] == plw and r["reference"] == reference
    ]
    return out


def test_mcnemar_p_matches_the_binomial_test_of_discordant_pairs():
    # 10 items right only at PLW 1, 2 right only at PLW 0, 8 right at both, 5 wrong at both.
    at_1 = [1] * 10 + [0] * 2 + [1] * 8 + [0] * 5
    at_0 = [0] * 10 + [1] * 2 + [1] * 8 + [0] * 5
    r = row(paired_comparisons(item_frame({("b", 1, 0): at_1, ("b", 0, 0): at_0}), "acc"))
    assert r["test"] == MCNEMAR and r["n_items"] == 25
    assert r["p_value"] == pytest.approx(stats.binomtest(10, 12, 0.5).pvalue)
    assert r["p_value"] == pytest.approx(2 * sum(math.comb(12, k) for k in range(3)) / 2**12)
    assert r["diff"] == pytest.approx(8 / 25) and r["mean"] == pytest.approx(18 / 25)
    # Against PLW 1 the same pair, the sign turned.
    back = row(
        paired_comparisons(item_frame({("b", 1, 0): at_1, ("b", 0, 0): at_0}), "acc"), plw=0.0, reference=1.0
    )
    assert back["diff"] == pytest.approx(-8 / 25) and back["p_value"] == pytest.approx(r["p_value"])


def test_paired_se_by_hand_with_seeds_averaged_within_items():
    # Two seeds at PLW 1 averaging to [1, 2, 3, 4]; PLW 0 gives [0.5, 2, 2, 4]: d = [0.5, 0, 1, 0].
    scores = {
        ("b", 1, 0): [1.1, 2.1, 3.1, 4.1],
        ("b", 1, 1): [0.9, 1.9, 2.9, 3.9],
        ("b", 0, 0): [0.5, 2, 2, 4],
    }
    r = row(paired_comparisons(item_frame(scores, "margin"), "margin"))
    sd = math.sqrt((0.125**2 + 0.375**2 + 0.625**2 + 0.375**2) / 3)
    assert r["n_items"] == 4 and r["diff"] == pytest.approx(0.375)
    assert r["se"] == pytest.approx(sd / 2)
    t = stats.t.ppf(0.975, 3)
    assert r["ci"] == pytest.approx([0.375 - t * sd / 2, 0.375 + t * sd / 2])
    unpaired = math.sqrt((np.var([1, 2, 3, 4], ddof=1) + np.var([0.5, 2, 2, 4], ddof=1)) / 4)
    assert r["se_unpaired"] == pytest.approx(unpaired)
    # Four items: all 16 sign patterns are enumerated; |0.5 s1 + 1.0 s3| ties the observed 1.5 when
    # s1 = s3, in half of them (the zero differences' signs do not matter), none exceeds it: mid-p 4/16.
    assert r["test"] == SIGN_FLIP and r["p_value"] == pytest.approx(4 / 16)


def test_several_seeds_of_a_binary_metric_use_the_permutation_test():
    scores = {("b", 1, 0): [1, 1, 0, 1], ("b", 1, 1): [1, 0, 0, 1], ("b", 0, 0): [0, 1, 0, 1]}
    assert row(paired_comparisons(item_frame(scores), "acc"))["test"] == SIGN_FLIP


def test_pooled_rows_weigh_every_item_equally():
    scores = {("a", 1, 0): [1, 1], ("a", 0, 0): [0, 0], ("b", 1, 0): [0] * 6, ("b", 0, 0): [0] * 6}
    result = paired_comparisons(item_frame(scores), "acc")
    pooled = row(result, "pooled")
    assert pooled["n_items"] == 8 and pooled["diff"] == pytest.approx(2 / 8)
    assert pooled["test"] == MCNEMAR and pooled["p_value"] == pytest.approx(0.5)  # 2 of 2 discordant


def test_missing_plw_0_and_1_use_the_lowest_and_highest_levels():
    scores = {("b", p, 0): [1, 0, 1] for p in (0.001, 0.1, 0.5)}
    result = paired_comparisons(item_frame(scores), "acc")
    assert result["reference_levels"] == {"d": {"low": 0.001, "high": 0.5}}
    assert {(r["plw"], r["reference"]) for r in result["rows"]} == {
        (0.1, 0.001),
        (0.5, 0.001),
        (0.001, 0.5),
        (0.1, 0.5),
    }
    assert any("PLW 0.001, is the low reference" in n for n in result["notes"])


def test_primary_metric_task_column_regularised_cells_and_json():
    frame = pd.concat(
        [
            item_frame({("arc_easy", 1, 0): [1, 0], ("arc_easy", 0, 0): [0, 0]}, "acc_norm"),
            item_frame({("arc_easy", 1, 0): [0, 0], ("arc_easy", 0, 0): [1, 1]}, "acc"),
            item_frame({("arc_easy", 0.5, 0): [1, 1]}, "acc_norm", regularizer="kl"),
            item_frame({("one", 1, 0): [0.2], ("one", 0, 0): [0.1]}, "mc2"),
        ]
    ).rename(columns={"benchmark": "task"})
    result = paired_comparisons(frame, "primary")
    assert row(result, "arc_easy")["metric"] == "acc_norm" and row(result, "arc_easy")["diff"] == 0.5
    assert {r["plw"] for r in result["rows"]} == {0.0, 1.0}  # the regularised PLW 0.5 cell is out
    single = row(result, "one")
    # One item: no spread, and both sign patterns tie the observed difference (mid-p 1/2).
    assert single["se"] is None and single["ci"] == [None, None] and single["p_value"] == 0.5
    assert row(result, "pooled")["metric"] == "primary"
    json.dumps(result, allow_nan=False)
    text = paired_text_rows(result)
    assert all(len(r) == len(COLUMNS) and all(isinstance(x, str) for x in r) for r in text)
    with pytest.raises(PLWError, match="value"):
        paired_comparisons(frame.drop(columns="value"), "acc")


def test_sign_flip_mid_p_enumerated_for_few_items_and_corrected_for_many():
    # 2 of 8 patterns tie |mean| = 1, none exceeds it: (0 + 2 / 2) / 8.
    assert sign_flip_p(np.array([1.0, 1.0, 1.0])) == pytest.approx(1 / 8)
    # |±1 ±1 ±2| is 4 twice, 2 four times (ties with the observed 2), 0 twice: (2 + 4 / 2) / 8.
    assert sign_flip_p(np.array([1.0, -1.0, 2.0])) == pytest.approx((2 + 4 / 2) / 8)
    assert sign_flip_p(np.zeros(50)) == 1.0
    # No random pattern of 50 signs reaches |mean| = 1: only the observed one, counted half.
    assert sign_flip_p(np.ones(50), resamples=999) == pytest.approx(0.5 / 1000)
    assert sign_flip_p(np.arange(40.0), seed=3) == sign_flip_p(np.arange(40.0), seed=3)


# ---- simulations: each benchmark of one frame is an independent replicate of a small design ----


def simulated(n_sims: int, n_items: int, shift: float, binary: bool, seed: int) -> pd.DataFrame:
    """PLW 0 and 1 with three seeds each; items differ in difficulty; PLW 1 adds `shift`."""
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(0.0, 1.5, size=(n_sims, 1, 1, n_items))
    level = np.array([0.0, shift])[None, :, None, None]
    noise = rng.normal(0.0, 1.0, size=(n_sims, 2, 3, n_items))
    z = difficulty + level + noise
    values = (z > 0).astype(float) if binary else z
    sims, levels, seeds, items = np.indices(values.shape).reshape(4, -1)
    return pd.DataFrame(
        {
            "cell": [f"plw={lv},seed={s}" for lv, s in zip(levels, seeds, strict=True)],
            "plw": levels.astype(float),
            "benchmark": [f"sim{i:04d}" for i in sims],
            "item": items.astype(str),
            "metric": "acc" if binary else "margin",
            "value": values.ravel(),
        }
    )


def sim_rows(frame: pd.DataFrame) -> list[dict]:
    result = paired_comparisons(frame, "primary", resamples=999)
    return [r for r in result["rows"] if r["benchmark"] != "pooled" and r["reference"] == 0.0]


def test_permutation_p_is_uniform_under_the_null():
    rows = sim_rows(simulated(400, 30, 0.0, binary=True, seed=1))
    assert len(rows) == 400 and {r["test"] for r in rows} == {SIGN_FLIP}
    p = np.array([r["p_value"] for r in rows])
    rejection = float(np.mean(p <= 0.05))
    print(f"rejection rate at 0.05 under the null: {rejection:.3f}; P(p <= 0.5) = {np.mean(p <= 0.5):.3f}")
    assert 0.02 <= rejection <= 0.08
    assert 0.4 <= np.mean(p <= 0.5) <= 0.6


def test_interval_covers_the_true_difference():
    rows = sim_rows(simulated(400, 30, 0.4, binary=False, seed=2))
    covered = np.mean([r["ci"][0] <= 0.4 <= r["ci"][1] for r in rows])
    print(f"95% interval coverage of the true difference: {covered:.3f}")
    assert covered >= 0.9


def test_pairing_shrinks_the_standard_error_when_items_differ_in_difficulty():
    rows = sim_rows(simulated(50, 200, 0.0, binary=True, seed=3))
    ratio = np.array([r["se"] / r["se_unpaired"] for r in rows])
    print(f"paired / unpaired SE: median {np.median(ratio):.3f}, max {ratio.max():.3f}")
    assert np.all(ratio < 1.0) and np.median(ratio) < 0.8


def test_unpaired_se_is_the_two_sample_formula():
    x, y = np.array([1.0, 1, 1, 0]), np.array([0.0, 1, 0, 0])
    p1, p2, n = 0.75, 0.25, 4
    assert unpaired_se(x, y) == pytest.approx(math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / n * n / (n - 1)))
