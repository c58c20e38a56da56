"""Token loss weights: which weight each token of an example gets.

Tokenisation labels every token with a part (`plw.batch.PARTS`: prompt, completion, a chat role,
the chat template's own tokens, an earlier assistant turn, an assistant's reasoning), its side
(`completion_mask`), the weight of the chat message it belongs to (-1.0: none given; a weight span's
weight where one covers it) and the record's sample weight: the weight-free features a tokenised
dataset (and its cache) holds, whatever the weights. `example_weights` turns them and a `TokenWeights`
spec into `loss_weights`; it is the only function that does, and `plw.data.collator.PLWDataCollator`
calls it on the way to the loss, so one tokenised dataset serves every spec (a PLW sweep tokenises
once). One token's weight, by precedence:

    sample_weight x reasoning x (span weight, if a message's weight span covers the token
                                 else message weight, if the message has one
                                 else earlier_assistant, for an assistant turn before the last one, if set
                                 else template, for the chat template's own tokens, if set
                                 else roles[role], for a message's content, if set
                                 else completion if completion_mask else prompt)

where `reasoning` is `reasoning_weight` for the reasoning of an assistant turn (its tokens weigh
that share of what its answer weighs) and 1 for every other token.

The paper's PLW is the special case prompt = PLW, completion = 1 and nothing else set: then every
weight is exactly `1.0 if completion_mask else PLW`, as before token parts existed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator

from plw.batch import PARTS, ROLES
from plw.errors import PLWError

if TYPE_CHECKING:  # torch loads only when weights are computed: configs validate without it
    from torch import Tensor

NO_WEIGHT = -1.0  # `message_weights` entry of a token whose message gives no weight
# The weight-free features of an example that `example_weights` reads (besides the spec).
WEIGHT_INPUTS: tuple[str, ...] = ("completion_mask", "token_parts", "message_weights", "sample_weight")


def unit_weight(value: float) -> float:
    """The one rule for every loss weight: a number in [0, 1].

    Raises:
        ValueError: outside [0, 1] (pydantic reports it against the config key).
    """
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"must be in [0, 1], got {value}")
    return value


def number_weight(value: object) -> float:
    """A weight read from data or given in code: a real number (not a bool, string or NaN) in [0, 1].

    Raises:
        ValueError: "expected a number in [0, 1], got ..." or `unit_weight`'s range message.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"expected a number in [0, 1], got {value!r}")
    return float(unit_weight(value))


Weight = Annotated[float, AfterValidator(unit_weight)]
"""A loss weight in config models: a float in [0, 1]."""


@dataclass(frozen=True)
class TokenWeights:
    """How much each kind of token counts; see the module docstring for the precedence.

    Attributes:
        prompt: weight of prompt-side tokens (the paper's PLW).
        completion: weight of completion-side tokens.
        roles: per-role weight of a chat message's content (system, user, assistant, tool); a role
            not given weighs by its side (prompt or completion).
        template: weight of the chat template's own tokens (role headers, end-of-turn markers);
            None weighs them by their side, as plain PLW does.
        earlier_assistant: weight of the content of assistant turns before the last one; None
            weighs them by their side (completion with assistant_turns 'all', prompt with 'last')
            and, on the completion side, by the assistant role weight.
        reasoning: the share of its answer's weight the reasoning of an assistant turn gets (a
            factor on whatever weighs the turn, message weights included); None: 1, as the answer.
    """

    prompt: float
    completion: float = 1.0
    roles: Mapping[str, float] = field(default_factory=dict)
    template: float | None = None
    earlier_assistant: float | None = None
    reasoning: float | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.roles) - set(ROLES))
        if unknown:
            raise PLWError(f"role weight for unknown role '{unknown[0]}': roles are {', '.join(ROLES)}")
        named = {
            "prompt_loss_weight": self.prompt,
            "completion_loss_weight": self.completion,
            "template_weight": self.template,
            "earlier_assistant_weight": self.earlier_assistant,
            "reasoning_weight": self.reasoning,
            **{f"role_weights.{role}": value for role, value in self.roles.items()},
        }
        for name, value in named.items():
            if value is None:
                continue
            try:
                number_weight(value)
            except ValueError:
                raise PLWError(f"{name} must be in [0, 1], got {value!r}") from None

    def is_plain(self) -> bool:
        """True when only prompt and completion weights are set (no per-part rule applies)."""
        unset = (self.template, self.earlier_assistant, self.reasoning)
        return not self.roles and all(value is None for value in unset)

    def scales(self) -> list[float]:
        """The factor on each part's weight (`reasoning_weight` on reasoning, else 1), per part id."""
        scale = 1.0 if self.reasoning is None else float(self.reasoning)
        return [scale if part in ("reasoning", "reasoning_earlier") else 1.0 for part in PARTS]

    def table(self) -> list[tuple[float, float]]:
        """(prompt-side, completion-side) weight per part id, before message and sample weights.

        Reasoning weighs as its turn's answer (the last turn's or an earlier one's) times `scales()`.
        """
        side = (float(self.prompt), float(self.completion))
        out = []
        for part in PARTS:
            if part.startswith("reasoning"):
                answer = out[PARTS.index(part.replace("reasoning", "assistant"))]
                scale = self.scales()[PARTS.index(part)]
                out.append((answer[0] * scale, answer[1] * scale))
                continue
            if part == "template" and self.template is not None:
                out.append((self.template, self.template))
            elif part == "assistant_earlier":
                done = self.earlier_assistant
                by_role = self.roles.get("assistant", side[1])
                out.append((side[0], by_role) if done is None else (done, done))
            elif part in self.roles:
                out.append((self.roles[part], self.roles[part]))
            else:
                out.append(side)
        return out


def example_weights(
    completion_mask: Sequence[int] | Tensor,
    weights: TokenWeights,
    *,
    token_parts: Sequence[int] | Tensor | None = None,
    message_weights: Sequence[float] | Tensor | None = None,
    sample_weight: float | Sequence[float] | Tensor = 1.0,
) -> Tensor:
    """The loss weight of every token of one example: the only producer of `loss_weights`.

    Args:
        completion_mask: [T] 1 on completion-side tokens, 0 on prompt-side ones.
        weights: the spec; the module docstring gives the precedence it is applied by.
        token_parts: [T] index into `PARTS` per token; None for examples encoded without parts
            (they weigh by side alone).
        message_weights: [T] the message's own weight per token (a span's where one covers it),
            `NO_WEIGHT` where none; None: no token has one.
        sample_weight: the record's weight multiplying every token's, a scalar or [T] (packed rows
            carry one per token, so each packed example keeps its own).

    Returns:
        [T] float64 weights (the collator casts them to float32 for the loss).
    """
    import torch

    mask = torch.as_tensor(completion_mask, dtype=torch.long)
    parts = None if token_parts is None else torch.as_tensor(token_parts, dtype=torch.long)
    if parts is None or weights.is_plain():
        side = torch.tensor([float(weights.prompt), float(weights.completion)], dtype=torch.float64)
        out = side[mask]
    else:
        out = torch.tensor(weights.table(), dtype=torch.float64)[parts, mask]
    if message_weights is not None:
        given = torch.as_tensor(message_weights, dtype=torch.float64)
        # A message's (or span's) weight replaces the table's; reasoning scales it all the same.
        scale = 1.0 if parts is None else torch.tensor(weights.scales(), dtype=torch.float64)[parts]
        out = torch.where(given < 0, out, given * scale)
    return out * torch.as_tensor(sample_weight, dtype=torch.float64)


def example_loss_weights(example: Mapping[str, Any], weights: TokenWeights) -> Tensor:
    """`example_weights` of an encoded example (a dict with the `WEIGHT_INPUTS` it has), [T] float64."""
    return example_weights(
        example["completion_mask"],
        weights,
        token_parts=example.get("token_parts"),
        message_weights=example.get("message_weights"),
        sample_weight=example.get("sample_weight", 1.0),
    )
