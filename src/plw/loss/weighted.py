"""The prompt-loss-weighted next-token loss, as pure functions.

    loss = sum_t w_t * ce_t / normaliser

where ce_t is the cross-entropy of predicting token t from tokens < t (the same shift as
Transformers' causal-LM loss), w_t is `loss_weights[t]` (PLW on prompt tokens, 1 on completion
tokens, 0 on padding) and the normaliser is one of:

- "weight_sum" (default): sum of w_t. At PLW = 0 this is the completion-only mean, at PLW = 1 the
  plain LM mean, and in between it moves smoothly with PLW: the loss is a weighted mean.
- "nonzero": the count of tokens with w_t > 0. Jumps when PLW goes from 0 to any epsilon (the
  denominator suddenly includes every prompt token), so small PLWs shrink the completion gradient.
- "completion": the count of completion tokens. The completion gradient's scale is independent of
  PLW, and prompt tokens add on top.

Under gradient accumulation and data parallelism the normaliser must be the total over the whole
optimizer step (every micro-batch on every process), or micro-batches with few weighted tokens get
over-weighted; `normaliser()` computes a micro-batch's share and the trainer sums and gathers them.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

Normalizer = Literal["weight_sum", "nonzero", "completion"]
NORMALIZERS: tuple[str, ...] = ("weight_sum", "nonzero", "completion")
IGNORE_INDEX = -100


def shift_targets(labels: torch.Tensor, loss_weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets and weights aligned with logits[:, :-1].

    Args:
        labels: [B, T] token ids, -100 where ignored.
        loss_weights: [B, T] weight of predicting each token.

    Returns:
        (targets [B, T-1], weights [B, T-1] float32, zero where the label is ignored).
    """
    targets = labels[:, 1:]
    weights = loss_weights[:, 1:].float() * targets.ne(IGNORE_INDEX)
    return targets, weights


def token_ce(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Per-token cross-entropy in float32.

    Args:
        logits: [N, V] or [B, T, V] scores for the positions that predict `targets`.
        targets: [N] or [B, T] token ids; -100 gives loss 0.
        label_smoothing: applied per token, before any weighting, so it composes with PLW.

    Returns:
        [N] or [B, T] float32 losses.
    """
    flat = logits.reshape(-1, logits.size(-1)).float()
    ce = F.cross_entropy(
        flat,
        targets.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="none",
        label_smoothing=label_smoothing,
    )
    return ce.view(targets.shape)


def token_losses(
    logits: torch.Tensor, labels: torch.Tensor, loss_weights: torch.Tensor, label_smoothing: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shifted per-token losses and their weights.

    Args:
        logits: [B, T, V] model outputs.
        labels: [B, T] token ids (-100 ignored).
        loss_weights: [B, T] float weights.

    Returns:
        (ce [B, T-1], weights [B, T-1]), both float32.
    """
    targets, weights = shift_targets(labels, loss_weights)
    return token_ce(logits[:, :-1, :], targets, label_smoothing), weights


def normaliser(
    loss_weights: torch.Tensor,
    labels: torch.Tensor,
    completion_mask: torch.Tensor | None = None,
    kind: str = "weight_sum",
) -> torch.Tensor:
    """A batch's contribution to the loss denominator (sum over its shifted positions).

    Args:
        loss_weights: [B, T].
        labels: [B, T], -100 where ignored.
        completion_mask: [B, T] 1 on completion tokens; needed for kind="completion".
        kind: one of NORMALIZERS.

    Returns:
        A float32 scalar tensor.
    """
    _, weights = shift_targets(labels, loss_weights)
    if kind == "weight_sum":
        return weights.sum()
    if kind == "nonzero":
        return weights.gt(0).sum().float()
    if kind == "completion":
        if completion_mask is None:
            raise ValueError("normaliser 'completion' needs completion_mask")
        return (completion_mask[:, 1:].bool() & labels[:, 1:].ne(IGNORE_INDEX)).sum().float()
    raise ValueError(f"unknown normaliser {kind!r}; expected one of {NORMALIZERS}")


def plw_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    loss_weights: torch.Tensor,
    *,
    completion_mask: torch.Tensor | None = None,
    normalizer: str = "weight_sum",
    denominator: torch.Tensor | float | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """The PLW loss of a batch.

    Args:
        logits: [B, T, V].
        labels: [B, T] token ids; prompt tokens keep their ids, -100 only where nothing is predicted.
        loss_weights: [B, T] float: PLW on prompt tokens, 1 on completion tokens, 0 on padding.
        completion_mask: [B, T], for normalizer="completion".
        normalizer: how the weighted sum is divided, see the module docstring.
        denominator: a precomputed normaliser (e.g. summed over a whole optimizer step); overrides
            `normalizer`.
        label_smoothing: per-token label smoothing.

    Returns:
        A scalar; 0 (with a gradient path) when nothing is weighted.
    """
    ce, weights = token_losses(logits, labels, loss_weights, label_smoothing)
    if denominator is None:
        denominator = normaliser(loss_weights, labels, completion_mask, normalizer)
    # clamp: a batch with no weighted token gives 0, not 0/0
    return (ce * weights).sum() / torch.as_tensor(denominator, dtype=torch.float32).clamp(min=1e-8)
