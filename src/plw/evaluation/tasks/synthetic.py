"""Exact-match accuracy on the held-out split of plw's synthetic instruction suite.

`synthetic` scores every task family (and reports each family's exact match beside the mean);
`synthetic_<family>` scores one family, so a study can keep the families with headroom for its model
(a family every cell fails carries no information about PLW) and give each its own item limit.

The prompt is the one the model was trained with (Stanford Alpaca's template by default), so the
score measures what fine-tuning taught. Short-answer families get a short generation budget and stop
at the first line break; long-answer families get room for their multi-line answers. Each item
record carries `item_hash`, an id of the record's instruction, input and target (not of the rendered
prompt, so cells trained with different templates still share item ids).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from plw.data.formats import render_alpaca
from plw.data.sources import Record
from plw.data.synthetic import FAMILIES, LONG_FAMILIES, ensure_suite, exact_match
from plw.evaluation import metrics as M
from plw.evaluation.data import DatasetRef, text
from plw.evaluation.model import EvalLM
from plw.evaluation.tasks.base import Settings, Task, TaskResult, item_hash, progress_hook

BUDGET = {"short": 24, "long": 192}
STOP = {"short": ("\n",), "long": ("\n\n",)}


def prompt_for(lm: EvalLM, row: dict, template: str) -> str:
    """The training-time prompt of a synthetic record."""
    if template == "chat":
        extra = row.get("input") or ""
        return lm.apply_chat_template(f"{row['instruction']}\n\n{extra}".strip())
    return render_alpaca(Record(row, "synthetic"), "alpaca")[0]


@dataclass(frozen=True)
class Synthetic(Task):
    """Held-out synthetic records (default suite: seed 0, 100 records; or DATA_DIR/synthetic/eval.jsonl)."""

    name: str = "synthetic"
    data: DatasetRef = DatasetRef("plw/synthetic", None, "eval", "synthetic/eval.jsonl")
    family: str | None = None
    """Score only this task family (None: all, with a per-family breakdown)."""

    def validate(self, row: dict) -> None:
        for key in ("instruction", "output", "task"):
            text(row, key)

    def load(self, settings: Settings) -> list[dict]:
        local = Path(settings.data_dir) / self.data.local if settings.data_dir else None
        path = local if local is not None and local.is_file() else ensure_suite(None)[1]
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        for row in rows:
            self.validate(row)
        if self.family is not None:
            rows = [r for r in rows if r["task"] == self.family]
        return rows[: settings.limit] if settings.limit is not None else rows

    def run(self, lm: EvalLM, rows: list[dict], settings: Settings) -> TaskResult:
        settings.start(len(rows))
        answers: dict[int, str] = {}
        for kind in ("short", "long"):
            index = [i for i, r in enumerate(rows) if (r["task"] in LONG_FAMILIES) == (kind == "long")]
            if not index:
                continue
            prompts = [prompt_for(lm, rows[i], settings.template) for i in index]
            with progress_hook(lm, settings.advance) as reported:
                out = lm.generate(prompts, settings.max_new_tokens or BUDGET[kind], STOP[kind])
            if not reported:
                settings.advance(len(prompts))
            answers.update(zip(index, out, strict=True))
        items = [
            {
                "doc_id": i,
                "family": r["task"],
                "answer": answers[i],
                "target": r["output"],
                "exact_match": float(exact_match(answers[i], r["output"])),
                "item_hash": item_hash(r["task"], r["instruction"], r.get("input") or "", r["output"]),
            }
            for i, r in enumerate(rows)
        ]
        metrics = M.summarize(items, ["exact_match"])
        if self.family is not None:
            return TaskResult(items, metrics)
        for family in sorted({item["family"] for item in items}):
            values = [item["exact_match"] for item in items if item["family"] == family]
            metrics[f"exact_match_{family}"] = sum(values) / len(values)
        return TaskResult(items, metrics)


def family_tasks() -> dict[str, Synthetic]:
    """`synthetic_<family>` for every family of the suite."""
    return {f"synthetic_{f}": Synthetic(name=f"synthetic_{f}", family=f) for f in FAMILIES}
