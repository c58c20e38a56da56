"""Batching that carries `loss_weights` to the loss.

Two layouts:
- padded (default): [B, T] tensors, right-padded; padding has weight 0 and attention 0.
- padding-free (`padding_free=True`, used for packing): the batch's examples are concatenated into a
  single [1, sum(T_i)] row with `position_ids` restarting at 0 per example and no attention mask;
  Transformers' attention then masks across example boundaries (packed-sequence detection from
  position_ids), and the weight of each example's first token is set to 0 so no loss crosses a
  boundary either.

Examples that were packed ahead of time carry `seq_lengths` (the lengths of the examples inside).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from plw.loss.weighted import IGNORE_INDEX


@dataclass
class PLWDataCollator:
    """Pad or concatenate examples with `input_ids`, `completion_mask` and optional `loss_weights`.

    Attributes:
        pad_token_id: id used for padding (its weight is 0, so any id works).
        prompt_loss_weight: builds `loss_weights` from `completion_mask` for examples that carry none.
        padding_free: concatenate the batch into one row instead of padding.
        pad_to_multiple_of: round the padded length up (padded layout only).
    """

    pad_token_id: int
    prompt_loss_weight: float | None = None
    padding_free: bool = False
    pad_to_multiple_of: int | None = None

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        rows = [self._row(e) for e in examples]
        if self.padding_free:
            return self._concatenate(rows)
        return self._pad(rows)

    def _row(self, example: dict[str, Any]) -> dict[str, torch.Tensor]:
        ids = torch.as_tensor(example["input_ids"], dtype=torch.long)
        completion = torch.as_tensor(example.get("completion_mask", [1] * len(ids)), dtype=torch.long)
        if "loss_weights" in example:
            weights = torch.as_tensor(example["loss_weights"], dtype=torch.float32)
            self._check_plw(weights, completion)
        elif self.prompt_loss_weight is not None:
            weights = torch.where(completion.bool(), 1.0, float(self.prompt_loss_weight))
        else:
            raise ValueError("example has no loss_weights and the collator has no prompt_loss_weight")
        labels = torch.as_tensor(example.get("labels", example["input_ids"]), dtype=torch.long)
        lengths = example.get("seq_lengths") or [len(ids)]
        return {
            "input_ids": ids,
            "labels": labels,
            "loss_weights": weights,
            "completion_mask": completion,
            "seq_lengths": torch.as_tensor(lengths, dtype=torch.long),
        }

    def _check_plw(self, weights: torch.Tensor, completion: torch.Tensor) -> None:
        """Weights tokenised for one PLW must not silently train a run configured for another."""
        if self.prompt_loss_weight is None:
            return
        prompt = weights[~completion.bool()]
        if prompt.numel() and not torch.allclose(prompt, torch.tensor(float(self.prompt_loss_weight))):
            raise ValueError(
                f"examples carry loss_weights for prompt weight {prompt[0].item():g}, but the collator was "
                f"given prompt_loss_weight={self.prompt_loss_weight}; drop one of them"
            )

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
        return {
            "input_ids": torch.cat([r["input_ids"] for r in rows])[None],
            "position_ids": position_ids[None],
            "labels": labels[None],
            "loss_weights": weights[None],
            "completion_mask": torch.cat([r["completion_mask"] for r in rows])[None],
        }


def _stack(tensors: list[torch.Tensor], length: int, value: float) -> torch.Tensor:
    out = torch.full((len(tensors), length), value, dtype=tensors[0].dtype)
    for i, t in enumerate(tensors):
        out[i, : len(t)] = t
    return out


def pack_examples(examples: list[dict[str, list]], max_length: int) -> list[dict[str, list]]:
    """Pack examples into rows of at most `max_length` tokens (first-fit decreasing).

    Each row concatenates its examples' lists and records `seq_lengths`; weights travel unchanged.
    Use with `PLWDataCollator(padding_free=True)`.
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
    keys = [k for k in examples[0] if isinstance(examples[0][k], list)] if examples else []
    packed = []
    for members in bins:
        row = {k: [x for i in members for x in examples[i][k]] for k in keys}
        row["seq_lengths"] = [len(examples[i]["input_ids"]) for i in members]
        packed.append(row)
    return packed
