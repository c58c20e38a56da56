"""Batching that weighs examples and carries `loss_weights` to the loss.

The collator is where token weights are made: each example's weight-free features
(`completion_mask`, `token_parts`, `message_weights`, `sample_weight`; `plw.data.tokenize`) and the
collator's `plw.data.weights.TokenWeights` spec go through `plw.data.weights.example_weights`, the
one producer. A dataset of the user's own that already carries `loss_weights` is taken as it is
when the collator has no spec; a spec and example weights at once is an error (give one).

Two layouts:
- padded (default): [B, T] tensors, right-padded; padding has weight 0 and attention 0.
- padding-free (`padding_free=True`, used for packing): the batch's examples are concatenated into a
  single [1, sum(T_i)] row with `position_ids` restarting at 0 per example and no attention mask;
  Transformers' attention then masks across example boundaries (packed-sequence detection from
  position_ids), and the weight of each example's first token is set to 0 so no loss crosses a
  boundary either.

Examples that were packed ahead of time carry `seq_lengths` (the lengths of the examples inside) and
a per-token `sample_weight` (`pack_examples`), so each packed example keeps its own.
Examples may carry `token_parts` (`plw.batch`); they travel through both layouts, padded with
`PART_PAD` (-1, "no part": padding has weight 0 and is not logged).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from plw.batch import IGNORE_INDEX
from plw.data.weights import TokenWeights, example_loss_weights, unit_weight

PART_PAD = -1  # token_parts of padding: no part


def check_loss_weight(name: str, value: float | None) -> None:
    """A prompt or completion loss weight lies in [0, 1] (None: not configured)."""
    if value is not None:
        try:
            unit_weight(value)
        except ValueError as err:
            raise ValueError(f"{name} {err}") from None


@dataclass
class PLWDataCollator:
    """Weigh, then pad or concatenate examples with `input_ids` and `completion_mask`.

    Attributes:
        pad_token_id: id used for padding (its weight is 0, so any id works).
        prompt_loss_weight: the simple way to give the plain spec: `weights` becomes
            `TokenWeights(prompt=prompt_loss_weight, completion=completion_loss_weight)`.
        completion_loss_weight: the completion tokens' weight of that spec.
        padding_free: concatenate the batch into one row instead of padding.
        pad_to_multiple_of: round the padded length up (padded layout only).
        weights: the token weight spec every example is weighed by; None: examples must carry
            their own `loss_weights` (a user's dataset).

    Raises:
        ValueError: a weight outside [0, 1]; both `weights` and a prompt or completion weight.
    """

    pad_token_id: int
    prompt_loss_weight: float | None = None
    completion_loss_weight: float = 1.0
    padding_free: bool = False
    pad_to_multiple_of: int | None = None
    weights: TokenWeights | None = None

    def __post_init__(self) -> None:
        check_loss_weight("prompt_loss_weight", self.prompt_loss_weight)
        check_loss_weight("completion_loss_weight", self.completion_loss_weight)
        if self.prompt_loss_weight is None:
            return
        if self.weights is not None:
            raise ValueError("give the collator weights or prompt_loss_weight, not both")
        self.weights = TokenWeights(prompt=self.prompt_loss_weight, completion=self.completion_loss_weight)

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        rows = [self._row(e) for e in examples]
        if self.padding_free:
            return self._concatenate(rows)
        return self._pad(rows)

    def _row(self, example: dict[str, Any]) -> dict[str, torch.Tensor]:
        ids = torch.as_tensor(example["input_ids"], dtype=torch.long)
        completion = torch.as_tensor(example.get("completion_mask", [1] * len(ids)), dtype=torch.long)
        labels = torch.as_tensor(example.get("labels", example["input_ids"]), dtype=torch.long)
        lengths = example.get("seq_lengths") or [len(ids)]
        row = {
            "input_ids": ids,
            "labels": labels,
            "loss_weights": self._weights({**example, "completion_mask": completion}),
            "completion_mask": completion,
            "seq_lengths": torch.as_tensor(lengths, dtype=torch.long),
        }
        if example.get("token_parts") is not None:
            row["token_parts"] = torch.as_tensor(example["token_parts"], dtype=torch.long)
        return row

    def _weights(self, example: dict[str, Any]) -> torch.Tensor:
        """[T] float32 loss weights: the spec's (`example_weights`), or the example's own."""
        given = example.get("loss_weights")
        if given is not None and self.weights is not None:
            raise ValueError("examples carry loss_weights and the collator has a weight spec: give one")
        if given is not None:
            return torch.as_tensor(given, dtype=torch.float32)
        if self.weights is None:
            raise ValueError(
                "example has no loss_weights and the collator has no weights: give one "
                "(weights= or prompt_loss_weight=)"
            )
        return example_loss_weights(example, self.weights).float()

    def _pad(self, rows: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        length = max(len(r["input_ids"]) for r in rows)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = {
            "input_ids": _stack([r["input_ids"] for r in rows], length, self.pad_token_id),
            "attention_mask": _stack([torch.ones_like(r["input_ids"]) for r in rows], length, 0),
            "labels": _stack([r["labels"] for r in rows], length, IGNORE_INDEX),
            "loss_weights": _stack([r["loss_weights"] for r in rows], length, 0.0),
            "completion_mask": _stack([r["completion_mask"] for r in rows], length, 0),
        }
        if _has_parts(rows):
            batch["token_parts"] = _stack(_parts(rows), length, PART_PAD)
        if any(len(r["seq_lengths"]) > 1 for r in rows):
            # Packed rows in a padded batch: positions restart per example; the attention mask
            # alone cannot separate examples, so padding-free layout is required.
            raise ValueError("packed examples need padding_free=True")
        return batch

    def _concatenate(self, rows: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        lengths = torch.cat([r["seq_lengths"] for r in rows])
        position_ids = torch.cat([torch.arange(int(n)) for n in lengths])
        weights = torch.cat([r["loss_weights"] for r in rows])
        labels = torch.cat([r["labels"] for r in rows])
        first = position_ids.eq(0)
        # The first token of each example would be predicted from the previous example's last token.
        weights = weights.masked_fill(first, 0.0)
        labels = labels.masked_fill(first, IGNORE_INDEX)
        batch = {
            "input_ids": torch.cat([r["input_ids"] for r in rows])[None],
            "position_ids": position_ids[None],
            "labels": labels[None],
            "loss_weights": weights[None],
            "completion_mask": torch.cat([r["completion_mask"] for r in rows])[None],
        }
        if _has_parts(rows):
            batch["token_parts"] = torch.cat(_parts(rows))[None]
        return batch


def _has_parts(rows: list[dict[str, torch.Tensor]]) -> bool:
    return any("token_parts" in r for r in rows)


def _parts(rows: list[dict[str, torch.Tensor]]) -> list[torch.Tensor]:
    """Each row's token_parts; a row without them (a non-chat example) is prompt / completion."""
    return [r.get("token_parts", r["completion_mask"]) for r in rows]


def _stack(tensors: list[torch.Tensor], length: int, value: float) -> torch.Tensor:
    out = torch.full((len(tensors), length), value, dtype=tensors[0].dtype)
    for i, t in enumerate(tensors):
        out[i, : len(t)] = t
    return out


def pack_examples(examples: list[dict[str, Any]], max_length: int) -> list[dict[str, list]]:
    """Pack examples into rows of at most `max_length` tokens (first-fit decreasing).

    Each row concatenates its examples' per-token lists [T_i] into one [sum T_i] and records
    `seq_lengths`; a number per example (`sample_weight`) becomes a per-token list, so every packed
    example keeps its own; other values (`where`) are left out. Use with
    `PLWDataCollator(padding_free=True)`, which zeroes the weight of each example's first token.
    """
    order = sorted(range(len(examples)), key=lambda i: -len(examples[i]["input_ids"]))
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        n = len(examples[i]["input_ids"])
        slot = next((b for b, free in enumerate(room) if free >= n), None)
        if slot is None:
            bins.append([i])
            room.append(max_length - n)
        else:
            bins[slot].append(i)
            room[slot] -= n
    first = examples[0] if examples else {}
    lists = [k for k, v in first.items() if isinstance(v, list)]
    numbers = [k for k, v in first.items() if isinstance(v, int | float) and not isinstance(v, bool)]
    packed = []
    for members in bins:
        row = {k: [x for i in members for x in examples[i][k]] for k in lists}
        for k in numbers:
            row[k] = [examples[i][k] for i in members for _ in range(len(examples[i]["input_ids"]))]
        row["seq_lengths"] = [len(examples[i]["input_ids"]) for i in members]
        packed.append(row)
    return packed
