"""Evaluation suite: lm-eval-compatible multiple choice, TruthfulQA generation, WMT translation and
AlpacaEval-style judged win rates, behind one small model interface.

    from plw.evaluation import evaluate
    scores = evaluate("smollm2-135m-instruct", "arc_easy,piqa", data_dir="../shared/data/bench", limit=100)

Heavy modules load lazily so importing this package stays cheap.
"""

from importlib import import_module

_LAZY = {
    "evaluate": "plw.evaluation.run",
    "resolve_lm": "plw.evaluation.run",
    "EvalLM": "plw.evaluation.model",
    "DummyLM": "plw.evaluation.model",
    "HFModel": "plw.evaluation.hf",
    "load_judge": "plw.evaluation.judges",
    "task_names": "plw.evaluation.tasks",
    "expand_tasks": "plw.evaluation.tasks",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'plw.evaluation' has no attribute {name!r}")
