"""Batching that carries `loss_weights` to the loss.

Two layouts:
- padded (default): [B, T] tensors, right-padded; padding has weight 0 and attention 0.
- padding-free (`padding_free=True`, used for packing): the batch's examples are concatenated into a
  single [1, sum(T_i)] row with `position_ids` restarting at 0 per example and no attention mask;
  Transformers' attention then masks across example boundaries (packed-sequence detection from
  position_ids), and the weight of each example's first token is set to 0 so no loss crosses a
  boundary either.

Examples that were packed ahead of time carry `seq_lengths` (the lengths of the examples inside).
Examples may carry `token_parts` (`plw.batch`); they travel through both layouts, padded with
`PART_PAD` (-1, "no part": padding has weight 0 and is not logged).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from plw.batch import IGNORE_INDEX, PART_IDS
from plw.data.weights import unit_weight

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
    """Pad or concatenate examples with `input_ids`, `completion_mask` and optional `loss_weights`.

    Examples without `loss_weights` get `completion_loss_weight` on completion tokens and
    `prompt_loss_weight` on prompt tokens. Examples with `loss_weights` keep them; unless they come
    from chat records (`token_parts` naming a chat part), their weights follow the completion mask
    alone and must agree with the collator's, when it has a `prompt_loss_weight`. Weights of chat
    records (from a role or message spec) cannot be rebuilt from the mask and are not checked.

    Attributes:
        pad_token_id: id used for padding (its weight is 0, so any id works).
        prompt_loss_weight: builds `loss_weights` from `completion_mask` for examples that carry none.
        completion_loss_weight: the completion tokens' weight for those examples.
        padding_free: concatenate the batch into one row instead of padding.
        pad_to_multiple_of: round the padded length up (padded layout only).
    """

    pad_token_id: int
    prompt_loss_weight: float | None = None
    completion_loss_weight: float = 1.0
    padding_free: bool = False
    pad_to_multiple_of: int | None = None

    def __post_init__(self) -> None:
        check_loss_weight("prompt_loss_weight", self.prompt_loss_weight)
        check_loss_weight("completion_loss_weight", self.completion_loss_weight)

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        rows = [self._row(e) for e in examples]
        if self.padding_free:
            return self._concatenate(rows)
        return self._pad(rows)

    def _row(self, example: dict[str, Any]) -> dict[str, torch.Tensor]:
        ids = torch.as_tensor(example["input_ids"], dtype=torch.long)
        completion = torch.as_tensor(example.get("completion_mask", [1] * len(ids)), dtype=torch.long)
        parts = example.get("token_parts")
        if "loss_weights" in example:
            weights = torch.as_tensor(example["loss_weights"], dtype=torch.float32)
            if not _has_chat_parts(parts):
                self._check_weights(weights, completion)
        elif self.prompt_loss_weight is not None:
            weights = self._weights(completion)
        else:
            raise ValueError("example has no loss_weights and the collator has no prompt_loss_weight")
        labels = torch.as_tensor(example.get("labels", example["input_ids"]), dtype=torch.long)
        lengths = example.get("seq_lengths") or [len(ids)]
        row = {
            "input_ids": ids,
            "labels": labels,
            "loss_weights": weights,
            "completion_mask": completion,
            "seq_lengths": torch.as_tensor(lengths, dtype=torch.long),
        }
        if parts is not None:
            row["token_parts"] = torch.as_tensor(parts, dtype=torch.long)
        return row

    def _weights(self, completion: torch.Tensor) -> torch.Tensor:
        """[T] float32: the completion weight on completion tokens, PLW on prompt tokens."""
        return torch.where(
            completion.bool(), float(self.completion_loss_weight), float(self.prompt_loss_weight)
        )

    def _check_weights(self, weights: torch.Tensor, completion: torch.Tensor) -> None:
        """Weights tokenised for one PLW must not silently train a run configured for another."""
        if self.prompt_loss_weight is None:
            return
        is_completion = completion.bool()
        for part, name, mask in (
            ("prompt", "prompt_loss_weight", ~is_completion),
            ("completion", "completion_loss_weight", is_completion),
        ):
            found, wanted = weights[mask], float(getattr(self, name))
            if found.numel() and not torch.allclose(found, torch.tensor(wanted)):
                raise ValueError(
                    f"examples carry loss_weights for {part} weight {found[0].item():g}, but the "
                    f"collator was given {name}={wanted:g}; drop one of them"
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


def _has_chat_parts(parts: list[int] | None) -> bool:
    """Whether an example's token_parts name a chat part (codes above prompt / completion)."""
    return parts is not None and any(p > PART_IDS["completion"] for p in parts)


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
