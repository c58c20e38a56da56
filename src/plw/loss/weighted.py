"""The weighted next-token loss on full logits, as pure functions.

    loss = sum_t w_t * ce_t / normaliser

where ce_t is the cross-entropy of predicting token t from tokens < t (the same shift as
Transformers' causal-LM loss), w_t is `loss_weights[t]` (PLW on prompt tokens, the completion loss
weight, 1 by default, on completion tokens, 0 on padding; any weights in [0, 1] work) and the
normaliser is one of:

- "weight_sum" (default): sum of w_t. At PLW = 0 this is the completion-only mean, at PLW = 1 the
  plain LM mean, and in between it moves smoothly with PLW: the loss is a weighted mean.
- "nonzero": the count of tokens with w_t > 0. Jumps when PLW goes from 0 to any epsilon (the
  denominator suddenly includes every prompt token), so small PLWs shrink the completion gradient.
  This is the normaliser of Weighted Instruction Tuning (WIT, Chatterjee et al., TACL 2025) and of
  TRL's `loss_type="wit"` pull request (prompt_loss_weight + completion_loss_weight).
- "completion": the count of completion tokens. The completion gradient's scale is independent of
  PLW, and prompt tokens add on top.

Under gradient accumulation and data parallelism the normaliser must be the total over the whole
optimizer step (every micro-batch on every process), or micro-batches with few weighted tokens get
over-weighted; `normaliser()` computes a micro-batch's share (`NextTokenLoss.normaliser` with the
configured kind) and the trainer sums and gathers them.

`plw_loss` runs the same code as training's full-logit path (`logits_weighted_ce`, used by
`plw.loss.next_token.NextTokenLoss`); the chunked and kernel paths equal it to float tolerance.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from plw.batch import IGNORE_INDEX
from plw.loss.config import NORMALIZERS, Normalizer

__all__ = [
    "IGNORE_INDEX",  # re-exported from plw.batch for older imports
    "NORMALIZERS",
    "Normalizer",
    "divide",
    "logits_weighted_ce",
    "normaliser",
    "plw_loss",
    "shift_targets",
    "token_ce",
    "token_losses",
]


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


def logits_weighted_ce(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor, label_smoothing: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The full-logit path: weighted sum of per-token cross-entropies, and the plain NLL for logging.

    Args:
        logits: [B, T-1, V] scores of the positions that predict `targets` (already shifted).
        targets: [B, T-1] token ids, -100 where ignored.
        weights: [B, T-1] float weights, 0 where ignored (as `shift_targets` returns them).
        label_smoothing: per-token label smoothing of the optimised loss.

    Returns:
        (weighted_sum, nll): float32 scalar sum_t w_t * ce_t, differentiable w.r.t. `logits`; and
        [B, T-1] float32 detached NLL without label smoothing, NaN where the target is ignored (the
        contract of `plw.loss.chunked.chunked_weighted_ce`).
    """
    ce = token_ce(logits, targets, label_smoothing)
    weighted_sum = (ce * weights).sum()
    with torch.no_grad():
        nll = token_ce(logits.detach(), targets) if label_smoothing else ce.detach()
        nll = nll.masked_fill(targets.eq(IGNORE_INDEX), float("nan"))
    return weighted_sum, nll


def divide(weighted_sum: torch.Tensor, denominator: torch.Tensor | float) -> torch.Tensor:
    """weighted_sum / denominator; 0 (keeping the gradient path) when nothing is weighted, not 0/0."""
    denominator = torch.as_tensor(denominator, dtype=torch.float32, device=weighted_sum.device)
    return weighted_sum / denominator.clamp(min=1e-8)


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
    """The weighted loss of a batch, as `PLWTrainer` computes it on the full-logit path.

    Args:
        logits: [B, T, V].
        labels: [B, T] token ids; prompt tokens keep their ids, -100 only where nothing is predicted.
        loss_weights: [B, T] float: PLW on prompt tokens, the completion weight (default 1) on
            completion tokens, 0 on padding.
        completion_mask: [B, T], for normalizer="completion".
        normalizer: how the weighted sum is divided, see the module docstring.
        denominator: a precomputed normaliser (e.g. summed over a whole optimizer step); overrides
            `normalizer`.
        label_smoothing: per-token label smoothing.

    Returns:
        A scalar; 0 (with a gradient path) when nothing is weighted.
    """
    targets, weights = shift_targets(labels, loss_weights)
    weighted_sum, _ = logits_weighted_ce(logits[:, :-1, :], targets, weights, label_smoothing)
    if denominator is None:
        denominator = normaliser(loss_weights, labels, completion_mask, normalizer)
    return divide(weighted_sum, denominator)
