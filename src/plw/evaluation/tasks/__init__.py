"""The task registry: names as in lm-evaluation-harness, plus aliases and the lm-eval bridge.

`lmeval:NAME` runs any lm-evaluation-harness task NAME (or a YAML path) on the same model.
"""

from __future__ import annotations

from collections.abc import Iterable

from plw.errors import PLWError
from plw.evaluation.tasks.base import Settings, Task, TaskResult

__all__ = ["ALIASES", "Settings", "Task", "TaskResult", "expand_tasks", "get_task", "task_names"]

LMEVAL_PREFIX = "lmeval:"

WMT = ["wmt14-fr-en", "wmt14-en-fr", "wmt16-de-en", "wmt16-en-de", "wmt16-ro-en", "wmt16-en-ro"]
ALIASES: dict[str, list[str]] = {
    # The paper's 13 benchmarks, minus PandaLM (not shipped).
    "paper": ["arc_challenge", "piqa", "truthfulqa_mc2", "winogrande", "truthfulqa_gen", *WMT, "alpaca_eval"],
    "multiple_choice": [
        "arc_challenge",
        "arc_easy",
        "piqa",
        "winogrande",
        "truthfulqa_mc1",
        "truthfulqa_mc2",
    ],
    "wmt": WMT,
}


def _registry() -> dict[str, Task]:
    from plw.evaluation.tasks.alpaca_eval import AlpacaEval
    from plw.evaluation.tasks.multiple_choice import multiple_choice_tasks
    from plw.evaluation.tasks.synthetic import Synthetic, family_tasks
    from plw.evaluation.tasks.translation import translation_tasks
    from plw.evaluation.tasks.truthfulqa_gen import TruthfulQAGen

    return {
        **multiple_choice_tasks(),
        "truthfulqa_gen": TruthfulQAGen(),
        **translation_tasks(),
        "alpaca_eval": AlpacaEval(),
        "synthetic": Synthetic(),
        **family_tasks(),
    }


def task_names() -> list[str]:
    """Names of the shipped tasks."""
    return list(_registry())


def expand_tasks(names: str | Iterable[str]) -> list[str]:
    """Split a comma list, expand aliases, drop duplicates (keeping order), check every name.

    Raises:
        PLWError: an unknown task name.
    """
    if isinstance(names, str):
        names = names.split(",")
    known = _registry()
    out: list[str] = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        for n in ALIASES.get(name, [name]):
            if n not in known and not (n.startswith(LMEVAL_PREFIX) and len(n) > len(LMEVAL_PREFIX)):
                choices = ", ".join([*known, *ALIASES])
                raise PLWError(f"unknown task '{n}' (known: {choices}; or lmeval:NAME for any lm-eval task)")
            if n not in out:
                out.append(n)
    if not out:
        raise PLWError("no tasks given")
    return out


def get_task(name: str) -> Task:
    """The task called `name` (see `expand_tasks` for accepted names)."""
    if name.startswith(LMEVAL_PREFIX):
        from plw.evaluation.lmeval_bridge import LMEvalTask

        return LMEvalTask(name, name[len(LMEVAL_PREFIX) :])
    try:
        return _registry()[name]
    except KeyError:
        expand_tasks([name])  # raises the full message
        raise
