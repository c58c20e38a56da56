"""The pieces every record reader shares: rendered segments, record errors, weights read from data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plw.data.weights import number_weight

Span = tuple[int, int, float]
"""A weighted character range of a segment's text: [begin, end) offsets and the weight of its tokens."""


@dataclass(frozen=True)
class Segment:
    """A run of text: its side (completion or prompt), part (`plw.batch.PARTS`) and message weight.

    `message_weight` is the chat message's own `weight`, -1.0 where none is given. `spans` are
    weighted character ranges of `text` (a message's `weight_spans`); their tokens take the span's
    weight instead of the message's (`plw.data.spans`).
    """

    text: str
    is_completion: bool
    part: str = "prompt"
    message_weight: float = -1.0
    spans: tuple[Span, ...] = ()


class RecordError(ValueError):
    """A malformed record; `where` and `field` locate it."""

    def __init__(self, where: str, field: str, message: str):
        super().__init__(f"{where}: field '{field}': {message}")
        self.where, self.field = where, field


def unit_number(value: Any, where: str, field: str) -> float:
    """A weight read from a record (`plw.data.weights.number_weight`'s rule), located on error."""
    try:
        return number_weight(value)
    except ValueError as err:
        raise RecordError(where, field, str(err)) from None
