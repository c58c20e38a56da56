"""Per-item scores of an evaluation directory as tidy rows, for the study store's `items` table.

`evaluate` writes `<task>.jsonl` (one JSON object per item) beside `<task>.metrics.json`. Each item
becomes one row per numeric score it carries (acc, acc_norm, mc2, exact_match, bleu_acc, ...), plus
two continuous scores computed from the choices' log-likelihoods when the item has them and does
not carry its own (multiple-choice records written since the tasks record them do; theirs win: the
task knows which choices are true, the record need not say):

    margin       LL(gold) - max LL(wrong choices); with `labels` (TruthfulQA MC2): the best true
                 choice's LL minus the best false one's
    ll_per_byte  LL(gold) / UTF-8 bytes of the gold continuation, when the item has
                 `continuation_bytes` (one count per choice)

Synthetic items that carry a `family` are also reported under task `<task>:<family>`, the benchmark
name the aggregate analysis gives each family (FAMILY_METRICS, used by plw.analysis.scores).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from plw.errors import PLWError

ROW_KEYS = ("task", "item", "metric", "value", "item_hash")
FAMILY_METRICS: dict[str, str] = {"synthetic": "exact_match_"}
"""Task -> metric prefix of its task families (plw.evaluation.tasks.synthetic writes
`exact_match_<family>`). Here a family's item is also a row of task `<task>:<family>`; in
plw.analysis.scores, when a cell reports per-family metrics (`exact_match_lookup`, ...), each family
is scored as its own benchmark `<task>:<family>` (as the paper scores its benchmarks apart, with a
benchmark effect) and the task's aggregate is left out: it is their mean, and one score per cell
leaves the GLMM nothing to fit across benchmarks."""

# Integers that identify or index rather than score: never rows.
NOT_SCORES = frozenset({"doc_id", "gold", "pred", "pred_norm", "labels", "item_hash", "continuation_bytes"})


def item_rows(eval_dir: Path) -> list[dict[str, Any]]:
    """Every `<task>.jsonl` in `eval_dir` as rows {task, item, metric, value, item_hash}.

    `item` is str(doc_id); `item_hash` is the record's own hash (str) or None. The task name is the
    one recorded in `<task>.metrics.json`, else the file's stem.

    Raises:
        PLWError: a line is not a JSON object, lacks doc_id, repeats one, or has malformed
            log-likelihoods; the message names file:line.
    """
    rows: list[dict[str, Any]] = []
    for path in sorted(Path(eval_dir).glob("*.jsonl")):
        rows += file_rows(path, task_name(path))
    return rows


def task_name(path: Path) -> str:
    """The task of `<stem>.jsonl`: `task` of the metrics file beside it (file names replace ':')."""
    try:
        record = json.loads(path.with_name(f"{path.stem}.metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return path.stem
    task = record.get("task") if isinstance(record, dict) else None
    return task if isinstance(task, str) and task else path.stem


def file_rows(path: Path, task: str) -> list[dict[str, Any]]:
    """The rows of one per-item file (see `item_rows`)."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            record = _record(line, where)
            item = str(record["doc_id"])
            if item in seen:
                raise PLWError(f"{where}: doc_id {item} appears twice")
            seen.add(item)
            rows += record_rows(record, task, item, where)
    return rows


def _record(line: str, where: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError as err:
        raise PLWError(f"{where}: not a JSON object ({err})") from None
    if not isinstance(record, dict):
        raise PLWError(f"{where}: not a JSON object")
    if record.get("doc_id") is None:
        raise PLWError(f"{where}: no doc_id")
    return record


def record_rows(record: dict[str, Any], task: str, item: str, where: str) -> list[dict[str, Any]]:
    """One item's rows: its numeric scores, then margin and ll_per_byte when computable."""
    scores = {k: float(v) for k, v in record.items() if k not in NOT_SCORES and _is_number(v)}
    # A score the record states (even as null: "not defined for this item") is not recomputed.
    scores |= {k: v for k, v in choice_scores(record, where).items() if k not in record}
    item_hash = record.get("item_hash")
    item_hash = None if item_hash is None else str(item_hash)
    tasks = [task]
    family = record.get("family")
    if isinstance(family, str) and family and task in FAMILY_METRICS:
        tasks.append(f"{task}:{family}")  # synthetic_<family> holds one family already: no split
    return [
        {"task": t, "item": item, "metric": metric, "value": value, "item_hash": item_hash}
        for t in tasks
        for metric, value in scores.items()
    ]


def _is_number(value: Any) -> bool:
    # bool is an int: True/False scores (rare) count as 1/0; None, NaN and lists are not scores.
    return isinstance(value, (int, float)) and math.isfinite(value)


def choice_scores(record: dict[str, Any], where: str) -> dict[str, float]:
    """margin and ll_per_byte of a multiple-choice item ({} for other items)."""
    if "loglikelihoods" not in record or "gold" not in record:
        return {}
    lls = _numbers(record["loglikelihoods"], "loglikelihoods", where)
    gold = record["gold"]
    if not isinstance(gold, int) or not 0 <= gold < len(lls):
        raise PLWError(f"{where}: gold {gold!r} is not an index into {len(lls)} loglikelihoods")
    out: dict[str, float] = {}
    margin = _margin(lls, gold, record.get("labels"), "mc2" in record, where)
    if margin is not None:
        out["margin"] = margin
    if record.get("continuation_bytes") is not None:
        size = _numbers(record["continuation_bytes"], "continuation_bytes", where, len(lls))[gold]
        if size > 0:
            out["ll_per_byte"] = lls[gold] / size
    return out


def _margin(lls: list[float], gold: int, labels: Any, mc2: bool, where: str) -> float | None:
    if labels is not None:
        labels = _numbers(labels, "labels", where, len(lls))
        true = [ll for ll, label in zip(lls, labels, strict=True) if label == 1]
        false = [ll for ll, label in zip(lls, labels, strict=True) if label != 1]
        return max(true) - max(false) if true and false else None
    if mc2:
        # An MC2 item without labels: several choices may be true, so "wrong" is unknown.
        return None
    wrong = [ll for i, ll in enumerate(lls) if i != gold]
    return lls[gold] - max(wrong) if wrong else None


def _numbers(value: Any, name: str, where: str, length: int | None = None) -> list[float]:
    """A list of finite numbers (of `length` when given), else a PLWError naming file:line."""
    ok = isinstance(value, list) and all(_is_number(v) for v in value) and bool(value)
    if not ok or (length is not None and len(value) != length):
        want = f"{length} numbers" if length is not None else "a list of numbers"
        raise PLWError(f"{where}: {name} is not {want}")
    return [float(v) for v in value]
