"""Which metric is a task's score."""

from __future__ import annotations

import pandas as pd

from plw.analysis.results import normalize_results
from plw.analysis.scores import PRIMARY_METRICS, primary_metric, select_scores


def test_primary_metrics_of_known_tasks():
    assert primary_metric("arc_challenge", ["acc", "acc_norm"]) == "acc_norm"
    assert primary_metric("piqa", ["acc", "acc_norm"]) == "acc_norm"
    assert primary_metric("winogrande", ["acc"]) == "acc"
    assert primary_metric("truthfulqa_gen", ["bleu_acc", "bleu_max", "rouge1_acc"]) == "bleu_acc"
    assert primary_metric("wmt14-en-fr", ["bleu", "chrf", "ter"]) == "bleu"
    assert primary_metric("alpaca_eval", ["win_rate", "n"]) == "win_rate"
    assert PRIMARY_METRICS["truthfulqa_mc2"] == "acc"


def test_truthfulqa_mc2_accepts_mc2_and_prefers_acc():
    assert primary_metric("truthfulqa_mc2", ["mc2"]) == "mc2"
    assert primary_metric("truthfulqa_mc2", ["mc2", "acc"]) == "acc"


def test_fallback_to_the_only_metric_and_none_when_ambiguous():
    assert primary_metric("my_task", ["f1"]) == "f1"
    assert primary_metric("my_task", ["f1", "em"]) is None


def test_select_scores_skips_train_retention_and_ambiguous_tasks():
    df = pd.DataFrame(
        {
            "plw": [0.0] * 6,
            "task": ["arc_easy", "arc_easy", "train", "retention", "odd", "odd"],
            "metric": ["acc", "acc_norm", "loss_rsd", "nll", "a", "b"],
            "value": [0.4, 0.45, 0.3, 2.5, 0.1, 0.2],
        }
    )
    scores, warnings = select_scores(normalize_results(df, "t.csv"))
    assert scores["benchmark"].tolist() == ["arc_easy"]
    assert scores["metric"].tolist() == ["acc_norm"] and scores["score"].tolist() == [0.45]
    assert len(warnings) == 1 and "'odd'" in warnings[0]


def test_synthetic_families_are_scored_as_benchmarks_and_the_aggregate_left_out():
    df = pd.DataFrame(
        {
            "plw": [0.1] * 4,
            "task": ["synthetic"] * 4,
            "metric": ["exact_match", "exact_match_lookup", "exact_match_count", "n"],
            "value": [0.5, 0.75, 0.25, 40.0],
        }
    )
    scores, warnings = select_scores(normalize_results(df, "t.csv"))
    assert sorted(scores["benchmark"]) == ["synthetic:count", "synthetic:lookup"]
    assert dict(zip(scores["benchmark"], scores["score"], strict=True)) == {
        "synthetic:count": 0.25,
        "synthetic:lookup": 0.75,
    }
    assert warnings == []


def test_synthetic_without_families_falls_back_to_its_aggregate():
    df = pd.DataFrame({"plw": [0.1], "task": ["synthetic"], "metric": ["exact_match"], "value": [0.5]})
    scores, _ = select_scores(normalize_results(df, "t.csv"))
    assert scores["benchmark"].tolist() == ["synthetic"] and scores["score"].tolist() == [0.5]
