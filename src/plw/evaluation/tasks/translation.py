"""WMT14 fr-en and WMT16 de-en / ro-en in both directions, scored by corpus BLEU and chrF (sacrebleu).

Prompt and generation settings are lm-eval's (the GPT-3 translation prompt): "{Source} phrase:
{source text}\\n{Target} phrase:", greedy, stopping at the first newline. The test split of the
hub datasets wmt/wmt14 and wmt/wmt16 (configs fr-en, de-en, ro-en), or local JSONL files in the same
row schema, `{"translation": {"fr": ..., "en": ...}}`, at `wmt14/fr-en/test.jsonl` etc.
"""

from __future__ import annotations

from dataclasses import dataclass

from plw.evaluation import metrics as M
from plw.evaluation.data import DatasetRef, text
from plw.evaluation.model import EvalLM
from plw.evaluation.tasks.base import (
    FewshotSampler,
    Settings,
    Task,
    TaskResult,
    load_fewshot_pool,
    progress_hook,
)

LANGUAGES = {"en": "English", "fr": "French", "de": "German", "ro": "Romanian"}
PAIRS = {"wmt14": ("fr-en",), "wmt16": ("de-en", "ro-en")}
MAX_NEW_TOKENS = 256
STOP = ("\n",)


def corpus_bleu(pairs: list[tuple[str, str]]) -> float:
    """Corpus BLEU (0-100) of (reference, prediction) pairs, sacrebleu defaults as lm-eval."""
    import sacrebleu

    refs, preds = zip(*pairs, strict=True)
    return sacrebleu.corpus_bleu(list(preds), [list(refs)]).score


def corpus_chrf(pairs: list[tuple[str, str]]) -> float:
    """Corpus chrF (0-100), sacrebleu defaults (char order 6, beta 2) as lm-eval."""
    import sacrebleu

    refs, preds = zip(*pairs, strict=True)
    return sacrebleu.corpus_chrf(list(preds), [list(refs)]).score


@dataclass(frozen=True)
class TranslationTask(Task):
    """One translation direction, e.g. wmt16-en-ro (English into Romanian)."""

    name: str
    data: DatasetRef
    fewshot: DatasetRef
    source: str
    target: str

    def validate(self, row: dict) -> None:
        text(row, f"translation.{self.source}")
        text(row, f"translation.{self.target}")

    def prompt(self, row: dict) -> str:
        src = row["translation"][self.source]
        return f"{LANGUAGES[self.source]} phrase: {src}\n{LANGUAGES[self.target]} phrase:"

    def run(self, lm: EvalLM, rows: list[dict], settings: Settings) -> TaskResult:
        prompts, notes = [self.prompt(r) for r in rows], []
        if settings.num_fewshot:
            # lm-eval draws this task's few-shot examples from the validation split.
            pool, same, note = load_fewshot_pool(self.name, self.fewshot, rows, settings, self.validate)
            sampler = FewshotSampler(pool, settings.num_fewshot, settings.seed, same)
            notes += [note] if note else []
            prompts = [self._with_shots(sampler.sample(r), p) for r, p in zip(rows, prompts, strict=True)]
        settings.start(len(prompts))
        with progress_hook(lm, settings.advance) as reported:
            outputs = lm.generate(prompts, settings.max_new_tokens or MAX_NEW_TOKENS, STOP)
        if not reported:
            settings.advance(len(prompts))
        items = [
            {
                "doc_id": i,
                "source": r["translation"][self.source],
                "reference": r["translation"][self.target],
                "prediction": out.strip(),
            }
            for i, (r, out) in enumerate(zip(rows, outputs, strict=True))
        ]
        pairs = [(x["reference"], x["prediction"]) for x in items]
        metrics = {
            "bleu": corpus_bleu(pairs),
            "bleu_stderr": M.bootstrap_stderr_fn(pairs, corpus_bleu),
            "chrf": corpus_chrf(pairs),
            "chrf_stderr": M.bootstrap_stderr_fn(pairs, corpus_chrf),
        }
        return TaskResult(items, metrics, notes)

    def _with_shots(self, shots: list[dict], prompt: str) -> str:
        examples = [f"{self.prompt(s)} {s['translation'][self.target]}" for s in shots]
        return "\n\n".join([*examples, prompt])


def translation_tasks() -> dict[str, TranslationTask]:
    """The six directions by lm-eval task name (wmt14-fr-en, wmt14-en-fr, wmt16-de-en, ...)."""
    tasks = {}
    for year, pairs in PAIRS.items():
        for pair in pairs:
            a, b = pair.split("-")
            data = DatasetRef(f"wmt/{year}", pair, "test", f"{year}/{pair}/test.jsonl")
            shots = DatasetRef(f"wmt/{year}", pair, "validation", f"{year}/{pair}/validation.jsonl")
            for src, tgt in ((a, b), (b, a)):
                name = f"{year}-{src}-{tgt}"
                tasks[name] = TranslationTask(name, data, shots, src, tgt)
    return tasks
