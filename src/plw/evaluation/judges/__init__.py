"""Pairwise judges for AlpacaEval-style win rates: a local HF model or an OpenAI-compatible endpoint.

A judge is configured by a YAML file whose prompt template lives next to it; `load_judge` reads
one. The shipped defaults are `local.yaml` and `endpoint.yaml` in this directory.
"""

from plw.evaluation.judges.base import Judge, JudgeConfig, load_judge

__all__ = ["Judge", "JudgeConfig", "load_judge"]
