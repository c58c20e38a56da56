"""What the model is trained on: every token of an example with its loss weight and part.

`plw show` answers "is my mask right?". It takes examples tokenised exactly as training does (its
weight-free features, `plw.data.tokenize`) and the run's `TokenWeights`, weighs them with the function
the collator uses (`plw.data.weights.example_weights`) and lays them out per token:

- `tokens`: the text each token adds to the decoded example (decoded in context, so SentencePiece's
  leading spaces and multi-byte characters come out right);
- `weights`: the `loss_weights` training gives, the weight of predicting the token from the ones
  before it;
- `parts`: the part each token belongs to (`plw.batch.PARTS`: prompt/completion, or a chat role,
  the template's own tokens, earlier assistant turns).

The summary gives, per part, the tokens and the weight mass (sum of weights). The mass counts
predicted tokens only: the first token of an example is never predicted, so its weight never counts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from plw.batch import PART_IDS, PARTS
from plw.data.weights import TokenWeights, example_loss_weights

# Tokens of context each token is decoded with: enough for multi-byte characters and word-initial
# spaces, few enough that showing an example stays linear in its length.
_CONTEXT = 8


@dataclass
class ShownExample:
    """One weighted example, token by token; all lists have the example's length T."""

    index: int
    ids: list[int]
    tokens: list[str]
    weights: list[float]
    parts: list[str]
    completion_mask: list[int]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def token_texts(tokenizer: Any, ids: list[int]) -> list[str]:
    """The text each token adds, decoded in a short window of context (special tokens kept).

    A token whose text cannot be cut out of its context (it completes a character begun before the
    window) is decoded on its own.
    """
    texts = []
    for t in range(len(ids)):
        start = max(0, t - _CONTEXT)
        before = tokenizer.decode(ids[start:t], skip_special_tokens=False) if t > start else ""
        upto = tokenizer.decode(ids[start : t + 1], skip_special_tokens=False)
        if upto.startswith(before) and "\ufffd" not in upto[len(before) :]:
            texts.append(upto[len(before) :])
        else:
            texts.append(tokenizer.decode(ids[t : t + 1], skip_special_tokens=False))
    return texts


def show_examples(
    examples: list[dict[str, Any]], tokenizer: Any, weights: TokenWeights, *, start: int = 0
) -> list[ShownExample]:
    """Lay out encoded examples per token, each token with the weight `weights` gives it."""
    return [
        ShownExample(
            index=start + i,
            ids=list(example["input_ids"]),
            tokens=token_texts(tokenizer, list(example["input_ids"])),
            weights=example_loss_weights(example, weights).tolist(),
            parts=[PARTS[p] for p in _part_ids(example)],
            completion_mask=[int(m) for m in example["completion_mask"]],
        )
        for i, example in enumerate(examples)
    ]


def summarise(examples: list[dict[str, Any]], weights: TokenWeights) -> dict[str, Any]:
    """Tokens and weight mass per part (in `PARTS` order) and per side, over encoded examples.

    Args:
        examples: with `completion_mask` (and `token_parts`, `message_weights`, `sample_weight`),
            each [T] but the sample weight.
        weights: the spec the examples are weighed by (`example_loss_weights`).

    Returns:
        {"examples", "tokens", "weight_mass", "prompt_tokens", "completion_tokens",
        "prompt_weight_mass", "completion_weight_mass", "generation_ratio_weighted" (completion over
        prompt mass; None without prompt mass), "parts": {part: {"tokens", "token_share",
        "weight_mass", "mass_share", "mean_weight"}}}. Mass is over predicted tokens (t >= 1).
    """
    count = len(examples)
    examples = examples or [{"completion_mask": [], "token_parts": []}]
    parts = np.concatenate([np.asarray(_part_ids(e), dtype=np.int64) for e in examples])
    side = np.concatenate([np.asarray(e["completion_mask"], dtype=bool) for e in examples])
    # The first token of an example is never predicted: its weight never counts.
    mass_of = np.concatenate([example_loss_weights(e, weights)[1:].numpy() for e in examples])
    predicted = np.concatenate([np.arange(len(e["completion_mask"])) > 0 for e in examples])
    tokens = np.bincount(parts, minlength=len(PARTS))
    mass = np.bincount(parts[predicted], weights=mass_of, minlength=len(PARTS))
    counted = np.bincount(parts[predicted], minlength=len(PARTS))
    total_tokens, total_mass = int(tokens.sum()), float(mass.sum())
    prompt_mass = float(mass_of[~side[predicted]].sum())
    completion_mass = float(mass_of[side[predicted]].sum())
    return {
        "examples": count,
        "tokens": total_tokens,
        "weight_mass": round(total_mass, 6),
        "prompt_tokens": int((~side).sum()),
        "completion_tokens": int(side.sum()),
        "prompt_weight_mass": round(prompt_mass, 6),
        "completion_weight_mass": round(completion_mass, 6),
        "generation_ratio_weighted": completion_mass / prompt_mass if prompt_mass else None,
        "parts": {
            part: {
                "tokens": int(tokens[i]),
                "token_share": round(tokens[i] / total_tokens, 6),
                "weight_mass": round(float(mass[i]), 6),
                "mass_share": round(mass[i] / total_mass, 6) if total_mass else 0.0,
                "mean_weight": round(mass[i] / counted[i], 6) if counted[i] else None,
            }
            for i, part in enumerate(PARTS)
            if tokens[i]
        },
    }


def _part_ids(example: dict[str, Any]) -> list[int]:
    if example.get("token_parts") is not None:
        return list(example["token_parts"])
    return [PART_IDS["completion"] if m else PART_IDS["prompt"] for m in example["completion_mask"]]


def part_side_counts(examples: list[dict[str, Any]]) -> np.ndarray:
    """Tokens per (part id, side) over examples: [len(PARTS), 2], side 1 = completion."""
    counts = np.zeros((len(PARTS), 2), dtype=np.int64)
    for example in examples:
        parts = np.asarray(_part_ids(example), dtype=np.int64)
        np.add.at(counts, (parts, np.asarray(example["completion_mask"], dtype=np.int64)), 1)
    return counts


def unreached_weights(weights: TokenWeights, counts: np.ndarray) -> list[str]:
    """The configured weights that apply to no token, by config key.

    A weight is configured when it is set (role, template, earlier-assistant weights) or differs from
    1 (prompt and completion weights: 1 is plain language modelling). It applies to the (part, side)
    cells whose weight changes when it changes, so the precedence is `TokenWeights.table`'s alone.

    Args:
        weights: the spec.
        counts: tokens per (part id, side), [len(PARTS), 2], from `part_side_counts`.
    """
    base = np.asarray(weights.table())
    present = counts > 0
    out = []
    for key, changed in _variants(weights):
        if not (present & (np.asarray(changed.table()) != base)).any():
            out.append(key)
    return out


def _variants(weights: TokenWeights) -> list[tuple[str, TokenWeights]]:
    """(config key, the spec with that one weight changed) for each configured weight."""

    def other(value: float) -> float:
        return 0.5 if value != 0.5 else 0.25

    out = []
    for key, name in (("prompt_loss_weight", "prompt"), ("completion_loss_weight", "completion")):
        if getattr(weights, name) != 1.0:
            out.append((key, replace(weights, **{name: other(getattr(weights, name))})))
    optional = (
        ("template_weight", "template"),
        ("earlier_assistant_weight", "earlier_assistant"),
        ("reasoning_weight", "reasoning"),
    )
    for key, name in optional:
        if getattr(weights, name) is not None:
            out.append((key, replace(weights, **{name: other(getattr(weights, name))})))
    for role, value in weights.roles.items():
        out.append((f"role_weights.{role}", replace(weights, roles={**weights.roles, role: other(value)})))
    return out


def weight_settings(weights: TokenWeights) -> dict[str, Any]:
    """A spec by the config keys that set it (`plw.training.config.TrainConfig`, `PLWSFTConfig`)."""
    return {
        "prompt_loss_weight": weights.prompt,
        "completion_loss_weight": weights.completion,
        "role_weights": dict(weights.roles),
        "template_weight": weights.template,
        "earlier_assistant_weight": weights.earlier_assistant,
        "reasoning_weight": weights.reasoning,
    }


def weighted_parts(examples: list[dict[str, Any]], weights: TokenWeights | None) -> dict[str, Any]:
    """`plw stats`' entries on encoded examples: tokens per part; with `weights`, the weighted Rg.

    Returns:
        `parts` ({part: tokens, token_share and, with weights, weight_mass, mass_share, mean_weight}),
        `weights`, and with weights `generation_ratio_weighted`, `weighted_prompt_mass`,
        `weighted_completion_mass` and `unused_weights`.
    """
    summary = summarise(examples, weights or TokenWeights(prompt=1.0))
    keep = ("tokens", "token_share") + (("weight_mass", "mass_share", "mean_weight") if weights else ())
    out: dict[str, Any] = {
        "parts": {part: {k: row[k] for k in keep} for part, row in summary["parts"].items()},
        "weights": weight_settings(weights) if weights else None,
    }
    if weights:
        out.update(
            generation_ratio_weighted=summary["generation_ratio_weighted"],
            weighted_prompt_mass=summary["prompt_weight_mass"],
            weighted_completion_mass=summary["completion_weight_mass"],
            unused_weights=unreached_weights(weights, part_side_counts(examples)),
        )
    return out
