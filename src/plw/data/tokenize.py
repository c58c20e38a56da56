"""Records to token features with a float loss weight per token.

`encode_records` gives the weight-free part of each example (what gets cached, so changing any
weight never re-tokenises):

- `input_ids`: list[int], the token ids;
- `completion_mask`: list[int], 1 for completion tokens (and the EOS after them), 0 for prompt;
- `token_parts`: list[int], the part of each token as an index into `plw.batch.PARTS` (prompt and
  completion for non-chat records; a role, "template", "reasoning", ... for chat records);
- `message_weights`: list[float], the chat message's own `weight` per token (a weight span's where
  one covers it, `plw.data.spans`), -1.0 where none;
- `sample_weight`: float, the record's sample weight (1.0 by default);
- `where`: str, the record's location, for errors found when weighting.

`add_weights` (or `weigh_examples`, which also refuses examples whose every weight is 0) adds
`labels` (a copy of `input_ids`: prompt tokens are *not* masked with -100, their weight decides) and
`loss_weights` from a PLW or a `plw.data.weights.TokenWeights`, keeping `input_ids`,
`completion_mask` and `token_parts`. `loss_weights[t]` is the weight of predicting token t from
tokens < t; the loss shifts it with the labels.

Segment boundaries: the full text is tokenised once; each boundary is the longest common prefix of
the full ids and the ids of the text up to it. The prompt's tokens are thus exactly its own
tokenisation (a prefix of the full sequence), and a token straddling the prompt/completion boundary
(a merge across it) is completion, never prompt. Parts are cut the same way, inside each run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import accumulate
from typing import Any

from plw.batch import PART_IDS
from plw.data.formats import (
    DEFAULT_TEMPLATE,
    RecordError,
    Segment,
    detect_format,
    sample_weight,
    to_segments,
)
from plw.data.sources import Record
from plw.data.spans import span_weights
from plw.data.truncation import TRUNCATIONS, truncation_plan
from plw.data.weights import TokenWeights, as_token_weights, example_weights
from plw.errors import PLWError

_BATCH = 1024
_PER_TOKEN = ("input_ids", "completion_mask", "token_parts", "message_weights")
_SKIP_HINT = "(skip_bad_records=true skips such records)"


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
    sample_weight_field: str | None = None,
) -> tuple[list[dict[str, Any]], TokenizeReport]:
    """Tokenise records into the weight-free part of examples (see the module docstring).

    Args:
        sample_weight_field: the record field holding its sample weight; None reads none.

    Raises:
        PLWError: a malformed record (naming its file, line and field), unless `skip_bad_records`.
    """
    report = TokenizeReport(records=len(records))
    rendered = []
    for record in records:
        try:
            record_fmt = detect_format(record) if fmt == "auto" else fmt
            record_template = DEFAULT_TEMPLATE[record_fmt] if template == "auto" else template
            weight = sample_weight(record, sample_weight_field)
            segments, eos = to_segments(
                record, record_fmt, record_template, tokenizer, assistant_turns=assistant_turns
            )
            rendered.append((segments, eos, record_template != "chat", weight, record.where))
        except RecordError as err:
            if not skip_bad_records:
                raise PLWError(f"{err} {_SKIP_HINT}") from err
            report.skipped.append(err.where)
    examples = []
    for start in range(0, len(rendered), _BATCH):
        batch = rendered[start : start + _BATCH]
        for tokens, (*_, weight, where) in zip(encode_batch(tokenizer, batch), batch, strict=True):
            mask = tokens["completion_mask"]
            status, keep = truncation_plan(
                mask, tokens["input_ids"], max_length, truncation, tokenizer.bos_token_id
            )
            if status == "dropped":
                report.dropped += 1
                continue
            if keep is not None:
                tokens = {key: [tokens[key][i] for i in keep] for key in _PER_TOKEN}
            report.truncated += status == "truncated"
            report.completion_tokens += sum(tokens["completion_mask"])
            report.prompt_tokens += len(tokens["completion_mask"]) - sum(tokens["completion_mask"])
            examples.append({**tokens, "sample_weight": weight, "where": where})
    report.kept = len(examples)
    return examples, report


def encode_batch(tokenizer: Any, items: list[tuple]) -> list[dict[str, list]]:
    """Tokenise rendered records in one batched call.

    Args:
        items: (segments, append_eos, add_special_tokens[, sample weight, where]) per record.

    Returns:
        per record: `input_ids`, `completion_mask`, `token_parts`, `message_weights`, each [T].
    """
    texts, spans = [], []
    for segments, _, special, *_ in items:
        cumulative = list(accumulate(s.text for s in segments))
        spans.append((len(texts), len(cumulative), special))
        texts.extend(cumulative)
    with_special = _tokenize(tokenizer, texts, True)
    without = _tokenize(tokenizer, texts, False) if any(not s for *_, s in spans) else None
    out = []
    for (start, count, special), (segments, eos, *rest) in zip(spans, items, strict=True):
        ids = with_special if special else without
        full = list(ids[start + count - 1])
        ends = _segment_ends(full, [ids[start + k] for k in range(count - 1)], segments)
        tokens = {"input_ids": full, **_per_token(segments, ends)}
        if any(s.spans for s in segments):  # rest: special tokens, sample weight, where the record is
            where = rest[2] if len(rest) > 2 else "record"
            tokens["message_weights"] = span_weights(tokenizer, segments, tokens, where, special)
        if eos and tokenizer.eos_token_id is not None:
            last = segments[-1]
            tokens["input_ids"].append(tokenizer.eos_token_id)
            tokens["completion_mask"].append(int(last.is_completion))
            tokens["token_parts"].append(PART_IDS[last.part])
            tokens["message_weights"].append(-1.0)
        out.append(tokens)
    return out


def _tokenize(tokenizer: Any, texts: list[str], special: bool) -> list[list[int]]:
    return tokenizer(texts, add_special_tokens=special)["input_ids"]


def _segment_ends(full: list[int], prefixes: list[list[int]], segments: list[Segment]) -> list[int]:
    """The token index where each segment ends.

    The prompt/completion runs are cut exactly as when segments were only prompt and completion: a
    token straddling a run boundary goes to the completion side. Parts are then cut inside each run,
    clamped to it, so a token's part is always on its side.
    """
    runs = [k for k in range(len(segments) - 1) if segments[k].is_completion != segments[k + 1].is_completion]
    run_ends = _cut(full, [prefixes[k] for k in runs], [segments[k].is_completion for k in runs])
    ends = _cut(full, prefixes, [s.is_completion for s in segments[:-1]])
    lower, previous = 0, 0
    for k in range(len(segments)):
        run = sum(1 for r in runs if r < k)  # the run segment k lies in
        upper = run_ends[run]
        ends[k] = upper if k in runs or k == len(segments) - 1 else min(max(ends[k], lower, previous), upper)
        previous = ends[k]
        if k in runs:
            lower = upper
    return ends


def _cut(full: list[int], prefixes: list[list[int]], completion: list[bool]) -> list[int]:
    """Token boundaries after each prefix (monotone), plus the end; a straddling token goes to a
    completion segment before the boundary."""
    bounds, previous = [], 0
    for prefix, is_completion in zip(prefixes, completion, strict=True):
        cut = _common_prefix(prefix, full)
        if cut < len(prefix) and is_completion:
            cut = min(cut + 1, len(full))  # a straddling token keeps its completion characters completion
        previous = max(previous, cut)
        bounds.append(previous)
    bounds.append(len(full))
    return bounds


def _per_token(segments: list[Segment], ends: list[int]) -> dict[str, list]:
    """Per-token `completion_mask`, `token_parts` and `message_weights` from segment ends."""
    out: dict[str, list] = {"completion_mask": [], "token_parts": [], "message_weights": []}
    start = 0
    for segment, end in zip(segments, ends, strict=True):
        n = max(end - start, 0)
        out["completion_mask"].extend([int(segment.is_completion)] * n)
        out["token_parts"].extend([PART_IDS[segment.part]] * n)
        out["message_weights"].extend([float(segment.message_weight)] * n)
        start = max(start, end)
    return out


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def add_weights(example: dict[str, Any], weights: float | TokenWeights) -> dict[str, list]:
    """An encoded example with `labels` and `loss_weights` added for a PLW or a weight spec.

    Returns:
        `input_ids`, `labels`, `loss_weights`, `completion_mask` and (when encoded with them)
        `token_parts`, each [T].
    """
    spec = as_token_weights(weights)
    loss_weights = example_weights(
        example["completion_mask"],
        spec,
        token_parts=example.get("token_parts"),
        message_weights=example.get("message_weights"),
        sample_weight=example.get("sample_weight", 1.0),
    )
    out = {
        "input_ids": example["input_ids"],
        "labels": list(example["input_ids"]),
        "loss_weights": loss_weights,
        "completion_mask": example["completion_mask"],
    }
    if example.get("token_parts") is not None:
        out["token_parts"] = example["token_parts"]
    return out


def weigh_examples(
    examples: list[dict[str, Any]],
    weights: float | TokenWeights,
    *,
    skip_bad_records: bool = False,
    report: TokenizeReport | None = None,
) -> list[dict[str, list]]:
    """`add_weights` over examples, refusing one whose every predicted token weighs 0.

    Raises:
        PLWError: such an example (naming its record), unless `skip_bad_records`; skipped ones are
            counted in `report`.
    """
    spec = as_token_weights(weights)
    out = []
    for example in examples:
        weighted = add_weights(example, spec)
        if any(weighted["loss_weights"][1:]):  # token 0 is never predicted
            out.append(weighted)
            continue
        where = example.get("where", "example")
        field = "messages" if any(p > 1 for p in example.get("token_parts") or ()) else "completion"
        if not skip_bad_records:
            raise PLWError(f"{where}: field '{field}': every token weighs 0 {_SKIP_HINT}")
        if report is not None:
            report.skipped.append(where)
            report.kept -= 1
    return out


def tokenize_records(
    records: list[Record],
    tokenizer: Any,
    *,
    prompt_loss_weight: float | None = None,
    weights: TokenWeights | None = None,
    **kwargs: Any,
) -> tuple[list[dict[str, list]], TokenizeReport]:
    """Tokenise records into weighted training features (see `add_weights`).

    Args:
        prompt_loss_weight: the PLW (completion tokens weigh 1); or give `weights` instead.
        weights: a full token weight spec.
        **kwargs: those of `encode_records`.
    """
    if (prompt_loss_weight is None) == (weights is None):
        raise PLWError("give prompt_loss_weight or weights, not both or neither")
    spec = weights or TokenWeights(prompt=prompt_loss_weight)
    if kwargs.get("truncation", "left") not in TRUNCATIONS:
        raise PLWError(f"truncation must be one of {', '.join(TRUNCATIONS)}")
    examples, report = encode_records(records, tokenizer, **kwargs)
    skip = kwargs.get("skip_bad_records", False)
    return weigh_examples(examples, spec, skip_bad_records=skip, report=report), report
