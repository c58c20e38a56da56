"""Relative aggregate score and the regulariser comparison."""

from __future__ import annotations

import pandas as pd
import pytest

from plw.analysis.aggregate import compare_regularizers, relative_scores
from plw.analysis.results import normalize_results
from plw.analysis.scores import select_scores


def _scores(rows):
    df = pd.DataFrame(rows, columns=["plw", "regularizer", "task", "value"]).assign(metric="acc")
    return select_scores(normalize_results(df, "t.csv"))[0]


def test_min_max_per_benchmark_then_mean_per_cell():
    scores = _scores(
        [
            (0.0, "none", "a", 0.2),
            (0.0, "none", "b", 0.5),
            (0.0, "none", "c", 0.3),
            (0.1, "none", "a", 0.6),
            (0.1, "none", "b", 0.7),
            (0.1, "none", "c", 0.3),
            (1.0, "none", "a", 0.4),
            (1.0, "none", "b", 0.9),
            (1.0, "none", "c", 0.3),
        ]
    )
    rel, warnings = relative_scores(scores)
    got = dict(zip(rel["plw"], rel["relative_score"], strict=True))
    # a: 0, 1, 0.5; b: 0, 0.5, 1; c is constant and left out.
    assert got == pytest.approx({0.0: 0.0, 0.1: 0.75, 1.0: 0.75})
    assert set(rel["n_benchmarks"]) == {2}
    assert len(warnings) == 1 and "'c'" in warnings[0]


def test_tuned_plw_against_regularisers():
    scores = _scores(
        [
            (0.0, "none", "a", 0.1),
            (0.01, "none", "a", 0.5),
            (0.1, "none", "a", 0.9),
            (1.0, "none", "a", 0.3),
            (0.0, "dropout=0.1", "a", 0.2),
            (1.0, "dropout=0.1", "a", 0.6),
        ]
    )
    rel, _ = relative_scores(scores)
    rows, missing = compare_regularizers(rel)
    assert not missing
    assert rows[0]["condition"] == "tuned PLW" and rows[0]["plw"] == 0.1 and rows[0]["relative_score"] == 1.0
    by = {r["condition"]: r for r in rows}
    assert by["dropout=0.1 at PLW 1"]["relative_score"] == pytest.approx(0.625)
    assert by["dropout=0.1 at PLW 1"]["difference"] == pytest.approx(-0.375)
    assert by["none at PLW 0"]["relative_score"] == 0.0
    assert [r["condition"] for r in rows][1:3] == ["none at PLW 0", "none at PLW 1"]


def test_comparison_not_estimable_without_regularisers():
    scores = _scores([(0.0, "none", "a", 0.1), (0.1, "none", "a", 0.5), (1.0, "none", "a", 0.3)])
    rows, missing = compare_regularizers(relative_scores(scores)[0])
    assert rows == [] and "no regularised cells" in missing[0]
