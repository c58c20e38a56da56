"""Records to token features with a float loss weight per token.

The output of tokenisation, per example:

- `input_ids`: list[int], the token ids;
- `completion_mask`: list[int], 1 for completion tokens (and the EOS after them), 0 for prompt;
- `labels`: list[int], a copy of `input_ids` (prompt tokens are *not* masked with -100: PLW weights them);
- `loss_weights`: list[float], PLW on prompt tokens, 1.0 on completion tokens.

`loss_weights[t]` is the weight of predicting token t from tokens < t; the loss shifts it with the
labels. The PLW-free part (`input_ids`, `completion_mask`) is what gets cached, so changing PLW never
re-tokenises.

Prompt/completion boundary: the full text is tokenised once; each segment boundary is the longest
common prefix of the full ids and the ids of the text up to that boundary. The prompt's tokens are
therefore exactly the prompt's own tokenisation (a prefix of the full sequence), and a token that
straddles the boundary (a merge across it) is counted as completion, never as prompt.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import accumulate
from typing import Any

from plw.data.formats import DEFAULT_TEMPLATE, RecordError, Segment, detect_format, to_segments
from plw.data.sources import Record
from plw.errors import PLWError

TRUNCATIONS = ("left", "right", "drop")
_BATCH = 1024


@dataclass
class TokenizeReport:
    """Counts from one tokenisation pass; `skipped` lists where bad records were."""

    records: int = 0
    kept: int = 0
    truncated: int = 0
    dropped: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    skipped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["skipped"] = len(self.skipped)
        return out


def encode_records(
    records: list[Record],
    tokenizer: Any,
    *,
    fmt: str = "auto",
    template: str = "auto",
    max_length: int | None = 512,
    truncation: str = "left",
    assistant_turns: str = "all",
    skip_bad_records: bool = False,
) -> tuple[list[dict[str, list[int]]], TokenizeReport]:
    """Tokenise records into `input_ids` and `completion_mask` (the PLW-free part).

    Raises:
        PLWError: a malformed record (naming its file, line and field), unless `skip_bad_records`.
    """
    report = TokenizeReport(records=len(records))
    rendered = []
    for record in records:
        try:
            record_fmt = detect_format(record) if fmt == "auto" else fmt
            record_template = DEFAULT_TEMPLATE[record_fmt] if template == "auto" else template
            segments, eos = to_segments(
                record, record_fmt, record_template, tokenizer, assistant_turns=assistant_turns
            )
            rendered.append((segments, eos, record_template != "chat"))
        except RecordError as err:
            if not skip_bad_records:
                raise PLWError(f"{err} (skip_bad_records=true skips such records)") from err
            report.skipped.append(err.where)
    examples = []
    for start in range(0, len(rendered), _BATCH):
        for ids, mask in encode_batch(tokenizer, rendered[start : start + _BATCH]):
            status, ids, mask = truncate(ids, mask, max_length, truncation, bos_id=tokenizer.bos_token_id)
            if status == "dropped":
                report.dropped += 1
                continue
            report.truncated += status == "truncated"
            report.completion_tokens += sum(mask)
            report.prompt_tokens += len(mask) - sum(mask)
            examples.append({"input_ids": ids, "completion_mask": mask})
    report.kept = len(examples)
    return examples, report


def encode_batch(tokenizer: Any, items: list[tuple[list[Segment], bool, bool]]) -> list[tuple[list, list]]:
    """Tokenise rendered records in one batched call.

    Args:
        items: (segments, append_eos, add_special_tokens) per record.

    Returns:
        (input_ids, completion_mask) per record.
    """
    texts, spans = [], []
    for segments, _, special in items:
        cumulative = list(accumulate(s.text for s in segments))
        spans.append((len(texts), len(cumulative), special))
        texts.extend(cumulative)
    with_special = _tokenize(tokenizer, texts, True)
    without = _tokenize(tokenizer, texts, False) if any(not s for *_, s in spans) else None
    out = []
    for (start, count, special), (segments, eos, _) in zip(spans, items, strict=True):
        ids = with_special if special else without
        full = list(ids[start + count - 1])
        mask = _segment_mask(full, [ids[start + k] for k in range(count - 1)], segments)
        if eos and tokenizer.eos_token_id is not None:
            full.append(tokenizer.eos_token_id)
            mask.append(int(segments[-1].is_completion))
        out.append((full, mask))
    return out


def _tokenize(tokenizer: Any, texts: list[str], special: bool) -> list[list[int]]:
    return tokenizer(texts, add_special_tokens=special)["input_ids"]


def _segment_mask(full: list[int], prefixes: list[list[int]], segments: list[Segment]) -> list[int]:
    """Per-token completion flag from the boundaries between segments."""
    bounds, previous = [], 0
    for k, prefix in enumerate(prefixes):
        cut = _common_prefix(prefix, full)
        if cut < len(prefix) and segments[k].is_completion:
            cut = min(cut + 1, len(full))  # a straddling token keeps its completion characters completion
        previous = max(previous, cut)
        bounds.append(previous)
    bounds.append(len(full))
    mask, start = [], 0
    for segment, end in zip(segments, bounds, strict=True):
        mask.extend([int(segment.is_completion)] * (end - start))
        start = end
    return mask


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def truncate(
    ids: list[int], mask: list[int], max_length: int | None, how: str, *, bos_id: int | None = None
) -> tuple[str, list[int], list[int]]:
    """Fit an example into `max_length` without silently losing completion tokens.

    `left` (default) cuts prompt tokens from the left, keeping a leading BOS and everything from the
    start of the last completion run; an example whose last completion alone does not fit is
    dropped. `right` cuts from the end (completion tokens may be lost; dropped if none remain).
    `drop` drops every over-long example.

    Returns:
        (status, ids, mask) with status "ok", "truncated" or "dropped".
    """
    if max_length is None or len(ids) <= max_length:
        return "ok", ids, mask
    if how == "drop":
        return "dropped", ids, mask
    if how == "right":
        ids, mask = ids[:max_length], mask[:max_length]
        return ("truncated" if any(mask) else "dropped"), ids, mask
    keep_bos = bos_id is not None and ids[0] == bos_id and mask[0] == 0
    start = _last_run_start(mask)
    room = max_length - (len(ids) - start) - int(keep_bos)
    if room < 0:
        return "dropped", ids, mask
    head = [0] if keep_bos else []
    cut = max(start - room, int(keep_bos))
    return "truncated", [ids[i] for i in head] + ids[cut:], [mask[i] for i in head] + mask[cut:]


def _last_run_start(mask: list[int]) -> int:
    end = max(i for i, m in enumerate(mask) if m) if any(mask) else len(mask) - 1
    start = end
    while start > 0 and mask[start - 1]:
        start -= 1
    return start


def add_weights(example: dict[str, list[int]], prompt_loss_weight: float) -> dict[str, list]:
    """Add `labels` and `loss_weights` to an encoded example for a given PLW."""
    weights = [1.0 if m else float(prompt_loss_weight) for m in example["completion_mask"]]
    return {**example, "labels": list(example["input_ids"]), "loss_weights": weights}


def tokenize_records(
    records: list[Record], tokenizer: Any, *, prompt_loss_weight: float, **kwargs: Any
) -> tuple[list[dict[str, list]], TokenizeReport]:
    """Tokenise records into training features: `input_ids`, `labels`, `loss_weights`, `completion_mask`.

    Keyword arguments are those of `encode_records`.
    """
    if not 0.0 <= prompt_loss_weight <= 1.0:
        raise PLWError(f"prompt_loss_weight must be in [0, 1], got {prompt_loss_weight}")
    if kwargs.get("truncation", "left") not in TRUNCATIONS:
        raise PLWError(f"truncation must be one of {', '.join(TRUNCATIONS)}")
    examples, report = encode_records(records, tokenizer, **kwargs)
    return [add_weights(e, prompt_loss_weight) for e in examples], report
