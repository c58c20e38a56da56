"""Evaluation suite: lm-eval-compatible multiple choice, TruthfulQA generation, WMT translation and
AlpacaEval-style judged win rates, behind one small model interface.

    from plw.evaluation import EvalOptions, evaluate
    options = EvalOptions(tasks=["arc_easy", "piqa"], data_dir="../shared/data/bench", limit=100)
    scores = evaluate("smollm2-135m-instruct", options, output_dir="runs/eval/smollm2")
    scores = evaluate("smollm2-135m-instruct", "piqa", data_dir="../shared/data/bench")  # as keywords

`EvalOptions` (`plw.evaluation.options`) validates once, when built; a bad value names its field.

Heavy modules load lazily so importing this package stays cheap.
"""

from plw.lazy import lazy_exports

_LAZY = {
    "evaluate": "plw.evaluation.run",
    "EvalOptions": "plw.evaluation.options",
    "OptionError": "plw.evaluation.options",
    "resolve_lm": "plw.evaluation.run",
    "EvalLM": "plw.evaluation.model",
    "DummyLM": "plw.evaluation.model",
    "HFModel": "plw.evaluation.hf",
    "load_judge": "plw.evaluation.judges",
    "task_names": "plw.evaluation.tasks",
    "expand_tasks": "plw.evaluation.tasks",
}

__all__ = list(_LAZY)

# Lazy so that importing the package (or one light module of it) pulls in no heavy dependency.
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
