"""Character spans of a chat message's content with a weight of their own, and their tokens.

Two record fields carry them, on a message:

- `weight_spans`: plw's own, `[{"begin": int, "end": int, "weight": float}]`: character offsets into
  the message's content, `end` exclusive (as Python slices), weights in [0, 1];
- `train_detail`: Axolotl's `message_field_training_detail` under the name its docs use,
  `[{"begin_offset": int, "end_offset": int, "train": bool}]`, `end_offset` inclusive (Axolotl's
  convention). A token trains (keeps its message's weight) only when it lies wholly inside a
  `train: true` span; every other token of the content weighs 0, as Axolotl decides. plw reads it
  as weight-0 spans over everything outside the `train: true` spans.

A token takes a span's weight when its characters overlap the span (the tokenizer's offset mapping
says which characters a token covers). A token that overlaps several spans, or straddles a span's
edge into another, takes the smallest of their weights: a token half in a span left out is left
out. Tokens of the content outside every span keep their message's weight.
"""

from __future__ import annotations

from itertools import accumulate
from typing import Any

from plw.data.records import RecordError, Segment, Span, unit_number
from plw.errors import PLWError


def read_spans(message: dict[str, Any], where: str, field: str, length: int) -> tuple[Span, ...]:
    """A message's spans as (begin, end, weight), end exclusive, sorted; () when it has none.

    Args:
        message: the message as the record has it.
        field: the message's name in errors (`messages[2]`).
        length: characters in its content.

    Raises:
        RecordError: a malformed span, one outside the content, overlapping spans, or both fields.
    """
    if message.get("weight_spans") is not None and message.get("train_detail") is not None:
        raise RecordError(where, field, "give weight_spans or train_detail, not both")
    if message.get("weight_spans") is not None:
        return _weight_spans(message["weight_spans"], where, f"{field}.weight_spans", length)
    if message.get("train_detail") is not None:
        return _train_detail(message["train_detail"], where, f"{field}.train_detail", length)
    return ()


def _weight_spans(value: Any, where: str, field: str, length: int) -> tuple[Span, ...]:
    spans = []
    for j, item in enumerate(_items(value, where, field, ("begin", "end", "weight"))):
        name = f"{field}[{j}]"
        begin, end = (
            _offset(item["begin"], where, f"{name}.begin"),
            _offset(item["end"], where, f"{name}.end"),
        )
        _in_range(begin, end, length, where, name, "end")
        spans.append((begin, end, unit_number(item["weight"], where, f"{name}.weight"), name))
    return _disjoint(spans, where)


def _train_detail(value: Any, where: str, field: str, length: int) -> tuple[Span, ...]:
    trained = []
    for j, item in enumerate(_items(value, where, field, ("begin_offset", "end_offset", "train"))):
        name = f"{field}[{j}]"
        begin = _offset(item["begin_offset"], where, f"{name}.begin_offset")
        end = _offset(item["end_offset"], where, f"{name}.end_offset") + 1  # inclusive in Axolotl
        _in_range(begin, end, length, where, name, "end_offset")
        if not isinstance(item["train"], bool):
            raise RecordError(where, f"{name}.train", f"expected true or false, got {item['train']!r}")
        trained.append((begin, end, 1.0 if item["train"] else 0.0, name))
    keep = [(b, e) for b, e, w in _disjoint(trained, where) if w]
    gaps, start = [], 0
    for begin, end in keep:  # everything not inside a trained span weighs 0
        if begin > start:
            gaps.append((start, begin, 0.0))
        start = end
    if start < length:
        gaps.append((start, length, 0.0))
    return tuple(gaps)


def _items(value: Any, where: str, field: str, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    shape = "{" + ", ".join(keys) + "}"
    if not isinstance(value, list):
        raise RecordError(where, field, f"expected a list of {shape}")
    for j, item in enumerate(value):
        if not isinstance(item, dict) or set(item) != set(keys):
            raise RecordError(where, f"{field}[{j}]", f"expected {shape}, got {item!r}")
    return value


def _offset(value: Any, where: str, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RecordError(where, field, f"expected a character offset (an integer >= 0), got {value!r}")
    return value


def _in_range(begin: int, end: int, length: int, where: str, name: str, end_key: str) -> None:
    if end <= begin:
        raise RecordError(where, name, "empty: its end is not after its begin")
    if end > length:
        raise RecordError(where, f"{name}.{end_key}", f"past the end of the content ({length} characters)")


def _disjoint(spans: list[tuple[int, int, float, str]], where: str) -> tuple[Span, ...]:
    ordered = sorted(spans)
    for before, after in zip(ordered, ordered[1:], strict=False):
        if after[0] < before[1]:
            raise RecordError(where, after[3], f"overlaps {before[3]}")
    return tuple((b, e, w) for b, e, w, _ in ordered)


def span_weights(
    tokenizer: Any, segments: list[Segment], tokens: dict[str, list], where: str, special: bool
) -> list[float]:
    """An example's `message_weights` [T], each token overlapping a segment's span set to its weight.

    Args:
        segments: the example's segments; their texts joined are what was tokenised.
        tokens: its `input_ids` and `message_weights`, each [T].
        where: the record, for errors.
        special: whether the text was tokenised with special tokens.

    Raises:
        PLWError: the tokenizer cannot map tokens to characters (not a fast tokenizer).
    """
    starts = [0, *accumulate(len(s.text) for s in segments)]
    spans = [
        (start + b, start + e, w) for s, start in zip(segments, starts, strict=False) for b, e, w in s.spans
    ]
    offsets = _offsets(tokenizer, "".join(s.text for s in segments), where, special)
    if len(offsets) != len(tokens["input_ids"]):
        raise PLWError(f"{where}: weight_spans: the tokenizer's offset mapping does not match its tokens")
    out = list(tokens["message_weights"])
    for t, (first, stop) in enumerate(offsets):
        hit = [w for begin, end, w in spans if first < end and stop > begin]
        if hit:
            out[t] = min(hit)
    return out


def _offsets(tokenizer: Any, text: str, where: str, special: bool) -> list[tuple[int, int]]:
    try:
        encoded = tokenizer(text, return_offsets_mapping=True, add_special_tokens=special)
    except (NotImplementedError, TypeError, ValueError) as err:
        raise PLWError(
            f"{where}: weight_spans need a tokenizer with an offset mapping (a fast one): {err}"
        ) from None
    offsets = encoded.get("offset_mapping") if hasattr(encoded, "get") else None
    if offsets is None:
        raise PLWError(f"{where}: weight_spans need a tokenizer with an offset mapping (a fast one)")
    return [tuple(o) for o in offsets]
