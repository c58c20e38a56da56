"""Scoring functions: multiple-choice accuracy, MC2 mass, BLEU/ROUGE similarity, bootstrap errors.

Each function scores one item (or aggregates a list); tasks assemble them. Definitions follow
lm-evaluation-harness 0.4.x so numbers are comparable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

BOOTSTRAP_ITERS = 1000
BOOTSTRAP_SEED = 1234


def mc_predictions(loglikelihoods: Sequence[float], choice_lengths: Sequence[float]) -> tuple[int, int]:
    """(argmax of log-likelihood, argmax of log-likelihood per character) as lm-eval's acc/acc_norm.

    Args:
        loglikelihoods: summed log-probability of each choice.
        choice_lengths: length in characters of each choice's text (without the leading space).
    """
    lls = np.asarray(loglikelihoods, dtype=float)
    return int(np.argmax(lls)), int(np.argmax(lls / np.asarray(choice_lengths, dtype=float)))


def mc2_score(loglikelihoods: Sequence[float], labels: Sequence[int]) -> float:
    """TruthfulQA MC2: probability mass on the true answers, normalised over all answers."""
    lls = np.asarray(loglikelihoods, dtype=float)
    probs = np.exp(lls - lls.max())  # shifting by the max leaves the ratio unchanged, avoids underflow
    probs /= probs.sum()
    return float(probs[np.asarray(labels) == 1].sum())


def mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def bootstrap_stderr(
    values: Sequence[float], iters: int = BOOTSTRAP_ITERS, seed: int = BOOTSTRAP_SEED
) -> float:
    """Standard error of the mean of `values` by bootstrap resampling of items (fixed seed)."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(iters, len(x)))
    return float(x[idx].mean(axis=1).std(ddof=1))


def bootstrap_stderr_fn(
    items: Sequence, fn: Callable[[Sequence], float], iters: int = 100, seed: int = BOOTSTRAP_SEED
) -> float:
    """Bootstrap standard error of a corpus-level statistic `fn(items)` (e.g. corpus BLEU).

    lm-eval also bootstraps corpus BLEU/chrF, with 100 resamples for these slow metrics.
    """
    if len(items) < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    stats = [fn([items[i] for i in rng.integers(0, len(items), size=len(items))]) for _ in range(iters)]
    return float(np.std(stats, ddof=1))


def summarize(per_item: Sequence[dict], metrics: Sequence[str]) -> dict[str, float]:
    """Mean of each per-item metric and its bootstrap standard error as `<metric>_stderr`."""
    out: dict[str, float] = {}
    for name in metrics:
        values = [row[name] for row in per_item]
        out[name] = mean(values)
        out[f"{name}_stderr"] = bootstrap_stderr(values)
    return out


def sentence_bleu(reference: str, prediction: str) -> float:
    """BLEU of one prediction against one reference, as TruthfulQA (and lm-eval) compute it."""
    import sacrebleu

    return sacrebleu.corpus_bleu(
        [prediction],
        [[reference]],
        smooth_method="exp",
        smooth_value=0.0,
        force=False,
        lowercase=False,
        tokenize="intl",
        use_effective_order=False,
    ).score


_ROUGE = None


def rouge_scores(reference: str, prediction: str) -> dict[str, float]:
    """ROUGE-1, ROUGE-2 and ROUGE-Lsum F-measures (0-100) as lm-eval's truthfulqa_gen computes them."""
    global _ROUGE
    from rouge_score import rouge_scorer

    if _ROUGE is None:  # building the scorer is slow; reuse it
        _ROUGE = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeLsum"])
    # lm-eval puts sentence breaks in for ROUGE-Lsum; its bootstrap aggregator over one pair is the score.
    scores = _ROUGE.score(reference.replace(" . ", ".\n"), prediction.replace(" . ", ".\n"))
    return {
        "rouge1": scores["rouge1"].fmeasure * 100,
        "rouge2": scores["rouge2"].fmeasure * 100,
        "rougeL": scores["rougeLsum"].fmeasure * 100,
    }


def true_false_similarity(scores_true: Sequence[float], scores_false: Sequence[float], prefix: str) -> dict:
    """TruthfulQA's max/diff/acc: best similarity to a true reference versus to a false one."""
    best_true, best_false = float(np.nanmax(scores_true)), float(np.nanmax(scores_false))
    return {
        f"{prefix}_max": best_true,
        f"{prefix}_diff": best_true - best_false,
        f"{prefix}_acc": float(best_true > best_false),
    }
