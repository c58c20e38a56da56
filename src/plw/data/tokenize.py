"""Records to weight-free token features; the loss weights are made later, from a spec.

`encode_records` gives each example, per token [T] unless said otherwise:

- `input_ids`: list[int], the token ids;
- `completion_mask`: list[int], 1 for completion tokens (and the EOS after them), 0 for prompt;
- `token_parts`: list[int], the part of each token as an index into `plw.batch.PARTS` (prompt and
  completion for non-chat records; a role, "template", "reasoning", ... for chat records);
- `message_weights`: list[float], the chat message's own `weight` per token (a weight span's where
  one covers it, `plw.data.spans`), -1.0 where none;
- `sample_weight`: float (one per example), the record's sample weight (1.0 by default);
- `where`: str, the record's location, for errors found later (`check_trainable`).

That is what the tokenisation cache stores and what a training dataset holds (`FEATURES`, without
`where`): no `loss_weights` and no `labels`. `plw.data.collator.PLWDataCollator` turns the features
and its `plw.data.weights.TokenWeights` spec into `loss_weights` (through
`plw.data.weights.example_weights`, the one producer) and `labels` (a copy of `input_ids`: prompt
tokens are *not* masked with -100, their weight decides). `check_trainable` refuses, before
training, an example that would weigh nothing under the spec. Segment boundaries are cut by
`plw.data.segments`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import accumulate
from typing import Any

from plw.batch import PART_IDS
from plw.data.formats import DEFAULT_TEMPLATE, RecordError, detect_format, sample_weight, to_segments
from plw.data.options import EncodeOptions, options_of
from plw.data.segments import per_token, segment_ends
from plw.data.sources import Record
from plw.data.spans import span_weights
from plw.data.truncation import truncation_plan
from plw.data.weights import TokenWeights, example_loss_weights
from plw.errors import PLWError

_BATCH = 1024
_PER_TOKEN = ("input_ids", "completion_mask", "token_parts", "message_weights")
_SKIP_HINT = "(skip_bad_records=true skips such records)"
# What a training example holds: the weight-free features (`where` stays behind: errors only).
FEATURES: tuple[str, ...] = (
    "input_ids",
    "completion_mask",
    "token_parts",
    "message_weights",
    "sample_weight",
)


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
    records: list[Record], tokenizer: Any, options: EncodeOptions | None = None, **changes: Any
) -> tuple[list[dict[str, Any]], TokenizeReport]:
    """Tokenise records into weight-free examples (see the module docstring).

    Args:
        options: the tokenisation options (default `EncodeOptions()`).
        **changes: `EncodeOptions` fields overriding `options` (`max_length=None`, ...).

    Raises:
        PLWError: a malformed record (naming its file, line and field), unless
            `options.skip_bad_records`; an unknown option value.
    """
    opts = options_of(options, **changes)
    report = TokenizeReport(records=len(records))
    rendered = []
    for record in records:
        try:
            record_fmt = detect_format(record) if opts.fmt == "auto" else opts.fmt
            record_template = DEFAULT_TEMPLATE[record_fmt] if opts.template == "auto" else opts.template
            weight = sample_weight(record, opts.sample_weight_field)
            segments, eos = to_segments(
                record, record_fmt, record_template, tokenizer, assistant_turns=opts.assistant_turns
            )
            rendered.append((segments, eos, record_template != "chat", weight, record.where))
        except RecordError as err:
            if not opts.skip_bad_records:
                raise PLWError(f"{err} {_SKIP_HINT}") from err
            report.skipped.append(err.where)
    examples = []
    for start in range(0, len(rendered), _BATCH):
        batch = rendered[start : start + _BATCH]
        for tokens, (*_, weight, where) in zip(encode_batch(tokenizer, batch), batch, strict=True):
            mask = tokens["completion_mask"]
            status, keep = truncation_plan(
                mask, tokens["input_ids"], opts.max_length, opts.truncation, tokenizer.bos_token_id
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
        ends = segment_ends(full, [ids[start + k] for k in range(count - 1)], segments)
        tokens = {"input_ids": full, **per_token(segments, ends)}
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


def check_trainable(
    examples: list[dict[str, Any]],
    weights: TokenWeights,
    *,
    skip_bad_records: bool = False,
    report: TokenizeReport | None = None,
) -> list[dict[str, Any]]:
    """The examples that some predicted token weighs more than 0 in under `weights`.

    The weights are computed (`example_loss_weights`) and dropped: the collator makes them again
    on the way to the loss. Training on an example that weighs nothing is surely a mistake (a
    message weight 0 on every turn, PLW 0 on a record without completion), so it stops here,
    before any model loads.

    Raises:
        PLWError: such an example (naming its record), unless `skip_bad_records`; skipped ones are
            counted in `report`.
    """
    out = []
    for example in examples:
        if example_loss_weights(example, weights)[1:].any():  # token 0 is never predicted
            out.append(example)
            continue
        where = example.get("where", "example")
        chat = any(p > PART_IDS["completion"] for p in example.get("token_parts") or ())
        if not skip_bad_records:
            name = "messages" if chat else "completion"
            raise PLWError(f"{where}: field '{name}': every token weighs 0 {_SKIP_HINT}")
        if report is not None:
            report.skipped.append(where)
            report.kept -= 1
    return out


def features(example: dict[str, Any]) -> dict[str, Any]:
    """The `FEATURES` of an encoded example: what a training dataset holds of it."""
    return {key: example[key] for key in FEATURES if key in example}


def tokenize_records(
    records: list[Record],
    tokenizer: Any,
    *,
    prompt_loss_weight: float | None = None,
    weights: TokenWeights | None = None,
    options: EncodeOptions | None = None,
    **changes: Any,
) -> tuple[list[dict[str, Any]], TokenizeReport]:
    """Tokenise records into weight-free training features (`FEATURES`, see the module docstring).

    Give the features to a `PLWDataCollator` with the weights to train with; it makes the
    `loss_weights` and `labels`.

    Args:
        prompt_loss_weight: the PLW the features will be trained with (completion tokens weigh 1),
            or `weights`, a full spec; give at most one. Only used to refuse (or, with
            `skip_bad_records`, skip) an example whose every predicted token weighs 0 under it;
            no weights are stored.
        options: the tokenisation options; `**changes` override its fields (`max_length=None`, ...).

    Raises:
        PLWError: both weights given, a weight outside [0, 1], an unknown option value, a malformed
            record or one weighing nothing (unless `skip_bad_records`).
    """
    if prompt_loss_weight is not None and weights is not None:
        raise PLWError("give prompt_loss_weight or weights, not both")
    if prompt_loss_weight is not None:
        weights = TokenWeights(prompt=prompt_loss_weight)
    opts = options_of(options, **changes)
    examples, report = encode_records(records, tokenizer, opts)
    if weights is not None:
        examples = check_trainable(examples, weights, skip_bad_records=opts.skip_bad_records, report=report)
    return [features(e) for e in examples], report
