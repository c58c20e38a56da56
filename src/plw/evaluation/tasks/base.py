"""What every task shares: run settings, results, progress reporting and few-shot sampling."""

from __future__ import annotations

import hashlib
import logging
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plw.evaluation.data import DatasetRef, Validator, load_rows
from plw.evaluation.model import EvalLM

log = logging.getLogger(__name__)

FEWSHOT_SEED = 1234  # lm-eval's default fewshot_random_seed


def item_hash(*parts: object) -> str:
    """A short stable id of an item's content: the first 12 hex digits of the SHA-1 of `parts`.

    Written into every per-item record so an analysis can check that two cells answered the same
    items (doc_id only says they answered items in the same position).
    """
    # Benchmark text does not use the unit separator, so ("ab", "c") and ("a", "bc") differ.
    joined = "\x1f".join(str(p) for p in parts)
    return hashlib.sha1(joined.encode("utf-8")).hexdigest()[:12]


@dataclass
class Settings:
    """How to run a task.

    Attributes:
        data_dir: local data directory (hub row schema); None loads from the hub.
        limit: score only the first `limit` items.
        num_fewshot: few-shot examples prepended to each prompt.
        seed: few-shot sampling seed.
        max_new_tokens: generation budget override (each task has its own default).
        judge: pairwise judge for alpaca_eval (a `plw.evaluation.judges.Judge`).
        template: prompt template for instruction tasks: "alpaca", "chat" or "none".
        start: called once with the number of progress steps of the task.
        advance: called with the number of steps just finished.
        output_dir: the run's output directory, where a task may keep intermediate results (the
            generations of alpaca_eval); None when the run writes nothing.
    """

    data_dir: Path | None = None
    limit: int | None = None
    num_fewshot: int = 0
    seed: int = FEWSHOT_SEED
    max_new_tokens: int | None = None
    judge: Any = None
    template: str = "alpaca"
    start: Callable[[int], None] = field(default=lambda total: None)
    advance: Callable[[int], None] = field(default=lambda n: None)
    output_dir: Path | None = None

    def settings_key(self) -> dict:
        """The settings that change a task's numbers (recorded to decide whether to resume)."""
        judge = getattr(self.judge, "name", None)
        return {
            "limit": self.limit,
            "num_fewshot": self.num_fewshot,
            "seed": self.seed,
            "max_new_tokens": self.max_new_tokens,
            "template": self.template,
            "judge": judge,
        }


@dataclass
class TaskResult:
    """A task's outcome.

    Attributes:
        items: per-item records (one JSON object each).
        metrics: aggregated metrics, with `<metric>_stderr` entries.
        notes: caveats to show and record (fallbacks, ignored options, excluded items).
        extra: metrics of further result names (the subtasks of an lm-eval group).
    """

    items: list[dict]
    metrics: dict[str, float]
    notes: list[str] = field(default_factory=list)
    extra: dict[str, dict[str, float]] = field(default_factory=dict)


class Task(ABC):
    """A benchmark: loads its rows, asks the model, scores.

    Attributes:
        name: task name as in lm-evaluation-harness.
        data: the evaluation split.
    """

    name: str
    data: DatasetRef

    @abstractmethod
    def validate(self, row: dict) -> None:
        """Raise `RowError` if `row` does not fit the schema."""

    @abstractmethod
    def run(self, lm: EvalLM, rows: list[dict], settings: Settings) -> TaskResult:
        """Score `rows` (already validated and limited)."""

    def load(self, settings: Settings) -> list[dict]:
        """The validated evaluation rows, cut to `settings.limit`."""
        rows = load_rows(self.data, settings.data_dir, self.validate, self.name)
        return rows[: settings.limit] if settings.limit is not None else rows


def load_fewshot_pool(
    task: str, ref: DatasetRef | None, eval_rows: list[dict], settings: Settings, validate: Validator
) -> tuple[list[dict], bool, str]:
    """Rows to draw few-shot examples from.

    Returns:
        (pool, same_split, note): the training split when available; otherwise, as lm-eval does for
        tasks without one, the evaluation split itself (the current item is excluded when sampling).
    """
    if ref is not None:
        local = settings.data_dir is not None
        if not local or (Path(settings.data_dir) / ref.local).is_file():
            return load_rows(ref, settings.data_dir, validate, task), False, ""
    note = f"{task}: few-shot examples drawn from the evaluation split (no training split found)"
    log.warning(note)
    return eval_rows, True, note


class FewshotSampler:
    """lm-eval's default sampler: a seeded `random.Random` drawn from in item order.

    When the pool is the evaluation split, k + 1 examples are drawn and the current item dropped.
    """

    def __init__(self, pool: Sequence[dict], k: int, seed: int, same_split: bool):
        self.pool, self.k, self.same_split = list(pool), k, same_split
        self.rnd = random.Random(seed)

    def sample(self, row: dict) -> list[dict]:
        if self.k == 0:
            return []
        n = min(len(self.pool), self.k + 1 if self.same_split else self.k)
        drawn = self.rnd.sample(self.pool, n)
        if self.same_split:
            drawn = [x for x in drawn if x is not row and x != row]
        return drawn[: self.k]


@contextmanager
def progress_hook(lm: EvalLM, advance: Callable[[int], None]) -> Iterator[bool]:
    """Route the model's own progress callback (if it has one) to `advance`.

    Yields:
        True when the model reports progress itself, so the caller need not.
    """
    if not hasattr(lm, "on_progress"):
        yield False
        return
    previous = lm.on_progress
    lm.on_progress = advance
    try:
        yield True
    finally:
        lm.on_progress = previous
