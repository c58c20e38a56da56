"""`EncodeOptions`: how records become tokens, in one frozen object.

Every option changes the tokens, and nothing else does (with the tokenizer and the data), so the
same object is the tokenisation cache's key (`plw.data.cache`). Weights are not among them: a
tokenised dataset is weight-free, and `plw.data.weights.example_weights` weighs it later, so runs
that differ only in their weights (a PLW sweep) share one tokenisation. Training builds its options
from its config (`plw.training.run.encode_options`); `plw stats`, the cost estimate and the mechanism
measures take the same object instead of threading the fields by hand.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from plw.data.formats import FORMATS, TEMPLATES
from plw.data.truncation import TRUNCATIONS
from plw.errors import PLWError

ASSISTANT_TURNS = ("all", "last")


def check_format(fmt: str) -> None:
    """Raise PLWError on a format name that is neither 'auto' nor a known format."""
    if fmt != "auto" and fmt not in FORMATS:
        raise PLWError(f"unknown format '{fmt}': expected auto, {', '.join(FORMATS)}")


def check_template(template: str) -> None:
    """Raise PLWError on a template name that is neither 'auto' nor a known template."""
    if template != "auto" and template not in TEMPLATES:
        raise PLWError(f"unknown template '{template}': expected auto, {', '.join(TEMPLATES)}")


@dataclass(frozen=True)
class EncodeOptions:
    """The tokenisation options of a data source (hashable, so also a cache key in memory).

    Attributes:
        fmt: the record format: "auto" (detected per record), "alpaca", "prompt_completion", "chat".
        template: "auto" (the format's default), "alpaca", "chat" or "none".
        max_length: the longest example in tokens; None: no limit.
        truncation: how an over-long example is fitted (`plw.data.truncation`): left, right, drop.
        assistant_turns: chat: "all" assistant turns are completion, or only the "last".
        skip_bad_records: skip (and count) malformed records instead of stopping at the first.
        sample_weight_field: the record field holding its sample weight; None reads none.

    Raises:
        PLWError: an unknown format, template, truncation or assistant_turns value.
    """

    fmt: str = "auto"
    template: str = "auto"
    max_length: int | None = 512
    truncation: str = "left"
    assistant_turns: str = "all"
    skip_bad_records: bool = False
    sample_weight_field: str | None = None

    def __post_init__(self) -> None:
        check_format(self.fmt)
        check_template(self.template)
        if self.truncation not in TRUNCATIONS:
            raise PLWError(f"truncation must be one of {', '.join(TRUNCATIONS)}")
        if self.assistant_turns not in ASSISTANT_TURNS:
            raise PLWError(f"assistant_turns must be 'all' or 'last', got {self.assistant_turns!r}")

    def key(self) -> dict[str, Any]:
        """The options as a JSON-ready dict (the cache key's part; field names are stable)."""
        return asdict(self)


def options_of(options: EncodeOptions | None = None, **changes: Any) -> EncodeOptions:
    """`options` (default: the defaults) with `changes` applied: the keyword form callers may use."""
    return replace(options or EncodeOptions(), **changes)
