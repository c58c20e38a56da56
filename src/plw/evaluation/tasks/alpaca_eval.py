"""AlpacaEval-style pairwise win rate against reference outputs (AlpacaEval 1: text-davinci-003).

The model answers each of the 805 instructions (greedy, in the chosen prompt template); a judge
compares its output with the reference output in both orders, which cancels the judge's position
bias: preference = (P(model better | model shown first) + P(model better | model shown second)) / 2.
`win_rate` counts a preference above 0.5 as a win and exactly 0.5 as half a win; `win_rate_soft` is
the mean preference.

Raw win rates favour longer outputs, so `length_controlled_win_rate` (with its standard error) reads
AlpacaEval 2.0's regression of the preference on the length difference at zero difference
(`plw.evaluation.length_control`); the mean output lengths (`avg_length`, `ref_avg_length`,
characters) are reported too.

With an output directory, the model's outputs are saved (`alpaca_eval.generations.json`) before the
judge is asked: generating 805 answers of up to 512 tokens is the slow part, and a judge that cannot be
reached must not throw them away. A rerun with the same model, data, limit, template and budget
judges the saved outputs without generating again (whatever the judge).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from plw.errors import PLWError
from plw.evaluation import metrics as M
from plw.evaluation.data import DatasetRef, field, text
from plw.evaluation.length_control import length_controlled_win_rate
from plw.evaluation.model import EvalLM
from plw.evaluation.tasks.base import Settings, Task, TaskResult, progress_hook
from plw.files import write_text_atomic

log = logging.getLogger(__name__)

MAX_NEW_TOKENS = 512
GENERATIONS = "alpaca_eval.generations.json"


def instruction_prompt(lm: EvalLM, instruction: str, template: str) -> tuple[str, tuple[str, ...]]:
    """The generation prompt and stop strings for one instruction in `template`."""
    if template == "alpaca":
        from plw.data.formats import ALPACA_PROMPT_NO_INPUT

        # A model that does not emit EOS would start a new Alpaca turn: stop there.
        return ALPACA_PROMPT_NO_INPUT.format(instruction=instruction), (
            "\n### Instruction:",
            "\n### Response:",
        )
    if template == "chat":
        return lm.apply_chat_template(instruction), ()
    if template == "none":
        return instruction, ()
    raise PLWError(f"unknown prompt template '{template}' (expected alpaca, chat or none)")


def combine(first: float | None, second: float | None) -> float | None:
    """P(model better) from the model-first verdict and the reference-first verdict."""
    if first is None or second is None:
        return None
    return (first + (1.0 - second)) / 2.0


def win(preference: float) -> float:
    return 1.0 if preference > 0.5 else 0.5 if preference == 0.5 else 0.0


@dataclass(frozen=True)
class AlpacaEval(Task):
    name: str = "alpaca_eval"
    data: DatasetRef = DatasetRef(
        "tatsu-lab/alpaca_eval", "alpaca_eval", "eval", "alpaca_eval/text_davinci_003_model_outputs.json"
    )

    def validate(self, row: dict) -> None:
        text(row, "instruction")
        field(row, "output", str)

    def run(self, lm: EvalLM, rows: list[dict], settings: Settings) -> TaskResult:
        if settings.judge is None:
            raise PLWError(
                "task alpaca_eval needs a judge: pass --judge (local, endpoint, local:MODEL or a YAML)"
            )
        settings.start(2 * len(rows))
        path = settings.output_dir / GENERATIONS if settings.output_dir is not None else None
        key = generation_key(lm, settings)
        outputs = read_generations(path, key, rows) if path is not None else None
        if outputs is None:
            outputs = self._generate(lm, rows, settings)
            if path is not None:
                write_generations(path, key, rows, outputs)
        else:
            log.info(
                "alpaca_eval: judging the %d outputs saved in %s (not generating again)", len(rows), path
            )
            settings.advance(len(rows))
        triples = [(r["instruction"], o, r["output"]) for r, o in zip(rows, outputs, strict=True)]
        swapped = [(i, ref, out) for i, out, ref in triples]
        try:
            verdicts = settings.judge.prefer_a(triples + swapped)
        except PLWError as err:
            if path is None:
                raise
            raise PLWError(
                f"{err}; the model's outputs are kept in {path}, a rerun only judges them"
            ) from err
        settings.advance(len(rows))
        items = self._items(rows, outputs, verdicts[: len(rows)], verdicts[len(rows) :])
        return TaskResult(items, *self._metrics(items))

    def _generate(self, lm: EvalLM, rows: list[dict], settings: Settings) -> list[str]:
        prompts, stops = zip(
            *(instruction_prompt(lm, r["instruction"], settings.template) for r in rows), strict=True
        )
        with progress_hook(lm, settings.advance) as reported:
            outputs = lm.generate(list(prompts), settings.max_new_tokens or MAX_NEW_TOKENS, stops[0])
        if not reported:
            settings.advance(len(rows))
        return [o.strip() for o in outputs]

    def _items(self, rows, outputs, first, second) -> list[dict]:
        items = []
        for i, (row, out, a, b) in enumerate(zip(rows, outputs, first, second, strict=True)):
            pref = combine(a, b)
            items.append(
                {
                    "doc_id": i,
                    "instruction": row["instruction"],
                    "output": out,
                    "reference": row["output"],
                    "p_model_first": a,
                    "p_reference_first": b,
                    "preference": pref,
                    "win": None if pref is None else win(pref),
                }
            )
        return items

    def _metrics(self, items: list[dict]) -> tuple[dict[str, float], list[str]]:
        judged = [x for x in items if x["preference"] is not None]
        notes = []
        if len(judged) < len(items):
            notes.append(
                f"alpaca_eval: {len(items) - len(judged)} of {len(items)} verdicts unreadable, excluded"
            )
        if not judged:
            raise PLWError("alpaca_eval: the judge gave no readable verdict")
        metrics = M.summarize(
            [{"win_rate": x["win"], "win_rate_soft": x["preference"]} for x in judged],
            ("win_rate", "win_rate_soft"),
        )
        metrics["length_controlled_win_rate"], metrics["length_controlled_win_rate_stderr"] = (
            length_controlled_win_rate(
                [x["preference"] for x in judged],
                [len(x["output"]) for x in judged],
                [len(x["reference"]) for x in judged],
            )
        )
        metrics["judge_unreadable"] = 1.0 - len(judged) / len(items)
        metrics["avg_length"] = M.mean([len(x["output"]) for x in items])
        metrics["ref_avg_length"] = M.mean([len(x["reference"]) for x in items])
        return metrics, notes


def generation_key(lm: EvalLM, settings: Settings) -> dict:
    """What the saved outputs depend on: not the judge, so another judge reuses them."""
    data = str(settings.data_dir.resolve()) if settings.data_dir else "hub"
    return {
        "model": lm.name,
        "data": data,
        "limit": settings.limit,
        "template": settings.template,
        "max_new_tokens": settings.max_new_tokens,
    }


def read_generations(path: Path, key: dict, rows: list[dict]) -> list[str] | None:
    """The saved outputs for `rows`, or None when there are none for this model and these settings."""
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        items = saved["items"]
        if saved["settings"] != key or [x["instruction"] for x in items] != [r["instruction"] for r in rows]:
            log.info("alpaca_eval: %s holds outputs of other settings; generating again", path)
            return None
        outputs = [x["output"] for x in items]
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("alpaca_eval: %s is unreadable; generating again", path)
        return None
    return outputs if all(isinstance(o, str) for o in outputs) else None


def write_generations(path: Path, key: dict, rows: list[dict], outputs: list[str]) -> None:
    """Save the outputs (atomically: a crash leaves the old file or the new one)."""
    items = [{"instruction": r["instruction"], "output": o} for r, o in zip(rows, outputs, strict=True)]
    record = {"task": "alpaca_eval", "settings": key, "items": items}
    write_text_atomic(path, json.dumps(record, indent=1, ensure_ascii=False) + "\n")
