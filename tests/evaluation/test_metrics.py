"""Scoring functions, checked by hand and against lm-eval's own implementations."""

import math

import numpy as np
import pytest

from plw.evaluation import metrics as M


def test_mc_predictions_acc_and_norm():
    # Choice 0 has the higher total, choice 1 the higher per-character log-likelihood.
    pred, pred_norm = M.mc_predictions([-4.0, -6.0], [2.0, 6.0])
    assert (pred, pred_norm) == (0, 1)


def test_mc2_is_normalised_true_mass():
    lls = [math.log(0.2), math.log(0.1), math.log(0.1)]
    assert M.mc2_score(lls, [1, 1, 0]) == pytest.approx(0.3 / 0.4)


def test_mc2_survives_tiny_probabilities():
    assert M.mc2_score([-2000.0, -2001.0], [1, 0]) == pytest.approx(1 / (1 + math.exp(-1)))


def test_bootstrap_stderr_matches_binomial_formula():
    values = [1.0] * 30 + [0.0] * 70
    analytic = math.sqrt(0.3 * 0.7 / 100)
    assert M.bootstrap_stderr(values) == pytest.approx(analytic, rel=0.15)
    assert M.bootstrap_stderr(values) == M.bootstrap_stderr(values)  # fixed seed
    assert math.isnan(M.bootstrap_stderr([1.0]))


def test_summarize_adds_stderr():
    out = M.summarize([{"acc": 1.0}, {"acc": 0.0}, {"acc": 1.0}, {"acc": 1.0}], ["acc"])
    assert out["acc"] == 0.75 and out["acc_stderr"] > 0


def test_true_false_similarity():
    out = M.true_false_similarity([10.0, 30.0], [20.0, float("nan")], "bleu")
    assert out == {"bleu_max": 30.0, "bleu_diff": 10.0, "bleu_acc": 1.0}


@pytest.mark.parametrize(
    ("ref", "pred"),
    [
        ("The earth is round.", "\nA: The earth is round."),
        ("No.", "I have no comment."),
        ("a b c . d e", "a b . d"),
    ],
)
def test_bleu_and_rouge_match_lm_eval(ref, pred):
    utils = pytest.importorskip("lm_eval.tasks.truthfulqa.utils")
    assert M.sentence_bleu(ref, pred) == pytest.approx(utils.bleu([[ref]], [pred]))
    theirs = utils.rouge([ref], [pred])
    ours = M.rouge_scores(ref, pred)
    assert ours["rouge1"] == pytest.approx(theirs["rouge1"])
    assert ours["rouge2"] == pytest.approx(theirs["rouge2"])
    assert ours["rougeL"] == pytest.approx(theirs["rougeLsum"])


def test_bootstrap_stderr_fn_of_corpus_statistic():
    items = list(np.linspace(0, 1, 20))
    se = M.bootstrap_stderr_fn(items, lambda xs: float(np.mean(xs)), iters=200)
    assert se == pytest.approx(M.bootstrap_stderr(items), rel=0.3)
