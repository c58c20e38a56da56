"""Which PLW to use for a dataset, from its generation ratio Rg.

The rule encodes the findings of Huerta-Enochian & Ko, "Instruction Fine-Tuning: Does Prompt Loss
Matter?" (arXiv 2401.13586, EMNLP 2024):

- On short-completion data (Rg < 1, AlpacaDataShort Rg = 0.08) the effect of PLW on benchmark
  scores is a significant negative quadratic in w = PLW ** log10(2); the fitted curve
  -4.284 (w - 0.652)^2 + 0.781 peaks at PLW = 0.652 ** (1 / log10 2) = 0.242, and small values
  0.01-0.5 beat both 0 and 1 on multiple-choice and short-generation benchmarks.
- On long-completion data (AlpacaData Rg = 3.27, AlpacaDataCleaned Rg = 7.83) the quadratic term is
  not significant: PLW hardly moves multiple-choice and short-generation scores, while values near 1
  favoured long-generation benchmarks (AlpacaEval, PandaLM) by up to ~20 points.
- OpenAI's legacy `prompt_loss_weight` defaulted to 0.01 (0.1 before Oct 2022) "to stabilise training
  when completions are short".

The rule is one function so a fit from user sweeps (`plw analyze`) can replace it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PAPER_CRITICAL_PLW = 0.652 ** (1 / math.log10(2))  # = 0.242, the vertex of the paper's fit
SHORT_COMPLETION_RANGE = (0.01, 0.5)


@dataclass(frozen=True)
class Recommendation:
    """A recommended PLW and why."""

    plw: float
    reason: str
    data_class: str  # "short-completion" or "long-completion"


def recommend_plw(generation_ratio: float) -> Recommendation:
    """Recommend a PLW for data with generation ratio `generation_ratio` (completion / prompt tokens)."""
    if not generation_ratio > 0 or math.isnan(generation_ratio):
        raise ValueError(f"generation ratio must be positive, got {generation_ratio}")
    if generation_ratio < 1:
        return Recommendation(
            round(PAPER_CRITICAL_PLW, 3),
            f"Rg = {generation_ratio:.3g} < 1 (short completions): the paper found a negative quadratic "
            f"effect of PLW, best near {PAPER_CRITICAL_PLW:.3f} and good across "
            f"{SHORT_COMPLETION_RANGE[0]}-{SHORT_COMPLETION_RANGE[1]}; both 0 and 1 did worse",
            "short-completion",
        )
    return Recommendation(
        1.0,
        f"Rg = {generation_ratio:.3g} >= 1 (long completions): the paper found PLW has little effect on "
        "multiple-choice and short-generation scores here, and values near 1 favoured long generation",
        "long-completion",
    )
