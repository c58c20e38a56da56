"""A local causal-LM judge: compares the log-probabilities of the verdicts.

The prompt (optionally in the judge model's chat template) is scored once and every verdict
("Output (a)", "Output (b)"; PandaLM's "1", "2", "Tie") is scored as a continuation sharing it, so a
judgement costs one pass over the prompt. The verdicts' probabilities are the softmax of their
log-probabilities, and P(a better) counts a tie half (`plw.evaluation.judges.base.preference`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from plw.evaluation.judges.base import Judge, JudgeConfig, preference, render
from plw.evaluation.model import EvalLM


class LocalJudge(Judge):
    """Judge with any `EvalLM` (a Hugging Face model, or a dummy in tests).

    Args:
        lm: the judge model.
        config: prompt template and verdict strings.
    """

    def __init__(self, lm: EvalLM, config: JudgeConfig):
        self.lm, self.config = lm, config
        self.name = f"local:{config.model or lm.name}"

    @classmethod
    def from_config(cls, config: JudgeConfig, lm: EvalLM | None = None) -> LocalJudge:
        if lm is None:
            from plw.evaluation.hf import HFModel

            lm = HFModel.from_spec(config.model, batch_size=4)
        return cls(lm, config)

    def prompt(self, instruction: str, output_a: str, output_b: str) -> str:
        text = render(self.config.prompt, instruction, output_a, output_b)
        if self.config.chat_template and self.lm.has_chat_template:
            return self.lm.apply_chat_template(text.strip())
        return text.rstrip() + "\n"  # a model without a chat template reads the plain prompt

    def prefer_a(self, triples: Sequence[tuple[str, str, str]]) -> list[float | None]:
        groups = []
        for instruction, a, b in triples:
            context = self.prompt(instruction, a, b)
            groups.append([(context, verdict) for verdict in self.config.verdicts])
        out: list[float | None] = []
        for scored in self.lm.loglikelihood_grouped(groups):
            logps = [lp for lp, _ in scored]
            top = max(logps)
            out.append(preference([math.exp(lp - top) for lp in logps]))  # a softmax over the verdicts
        return out
