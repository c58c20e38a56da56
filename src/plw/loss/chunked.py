"""The weighted next-token loss without materialising the [batch, seq, vocab] logits.

`chunked_weighted_ce` fuses the output head (hidden @ W.T + b) with the per-token cross-entropy and
walks the tokens in chunks of `chunk_size`, so at most one [chunk, vocab] float32 block of logits
lives at a time. It uses the trick of Liger's fused linear cross-entropy: because the loss is a
scalar sum, the gradient of each chunk's logits is known as soon as its softmax is, so the forward
pass also computes the chunk's gradient w.r.t. its hidden states and adds its share of the head's
gradient; backward only scales those buffers by the incoming gradient. That costs the same three
matmuls as the unfused path (the alternative, recomputing each chunk in backward, costs four)
and keeps [N, H] + [V, H] float32 buffers between forward and backward instead of [N, V].

The per-token loss equals `plw.loss.weighted.token_ce`, i.e. `F.cross_entropy(label_smoothing=eps)`:

    ce_i = (1 - eps) * (lse_i - z_i[t_i]) + eps * (lse_i - mean_j z_ij)

Tokens with weight 0 (PLW = 0 prompt tokens, padding) contribute nothing to the loss or its
gradient, so they skip the differentiable path entirely; they are optionally scored without
gradients so the trainer can still log a prompt loss at PLW = 0.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from plw.batch import IGNORE_INDEX

if TYPE_CHECKING:
    from plw.loss.kernels import TokenCE


def chunked_weighted_ce(
    hidden: Tensor,
    head_weight: Tensor,
    head_bias: Tensor | None,
    targets: Tensor,
    weights: Tensor,
    *,
    label_smoothing: float = 0.0,
    chunk_size: int = 1024,
    score_zero_weight: bool = True,
    token_ce: TokenCE | None = None,
) -> tuple[Tensor, Tensor]:
    """Weighted sum of per-token cross-entropies of a linear head, computed chunk by chunk.

    Args:
        hidden: [N, H] final hidden states of the positions that predict `targets` (already shifted).
        head_weight: [V, H] output head weight (may be tied to the input embeddings).
        head_bias: [V] output head bias, or None.
        targets: [N] token ids, -100 where ignored.
        weights: [N] float loss weights (0 where ignored).
        label_smoothing: per-token label smoothing, as in `F.cross_entropy`.
        chunk_size: tokens per [chunk_size, V] block of logits.
        score_zero_weight: also score (without gradient) the non-ignored tokens of weight 0, so their
            NLL can be logged; otherwise their NLL is NaN.
        token_ce: a kernel library's per-token cross-entropy (`plw.loss.kernels.KERNELS`) computing
            the selected rows instead of plw's chunks (`chunk_size` is then unused, and the kernel
            keeps the caller's precision); the row selection, weighting and logging stay these.

    Returns:
        (weighted_sum, nll): weighted_sum is a float32 scalar sum_i weights_i * ce_i, differentiable
        w.r.t. hidden, head_weight and head_bias; nll is [N] float32, detached, the plain NLL (no label
        smoothing) of every scored token and NaN elsewhere.
    """
    _check_shapes(hidden, head_weight, head_bias, targets, weights)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    # Under mixed precision (the trainer's autocast) the matmuls would otherwise run in half
    # precision; the loss is defined in float32. The kernel libraries manage their own precision.
    precision = torch.autocast(hidden.device.type, enabled=False) if token_ce is None else nullcontext()
    with precision:
        return _weighted_ce(
            hidden, head_weight, head_bias, targets, weights, label_smoothing, chunk_size, score_zero_weight,
            token_ce,
        )  # fmt: skip


def _weighted_ce(
    hidden, head_weight, head_bias, targets, weights, eps, chunk_size, score_zero_weight, token_ce
):
    """`chunked_weighted_ce` with the precision set and arguments checked."""
    weights = weights.float()
    valid = targets.ne(IGNORE_INDEX)
    weighted = valid & weights.ne(0)
    nll = torch.full(targets.shape, math.nan, dtype=torch.float32, device=hidden.device)

    rows = _rows(weighted)
    h, t, w = _select(hidden, rows), _select(targets, rows), _select(weights, rows)
    total, nll_w = _rows_ce(h, head_weight, head_bias, t, w, eps, chunk_size, token_ce)
    _scatter(nll, rows, nll_w)

    if score_zero_weight:
        rows0 = _rows(valid & ~weighted)
        if rows0 is None or rows0.numel():
            with torch.no_grad():
                h0, t0 = _select(hidden.detach(), rows0), _select(targets, rows0)
                bias0 = _detach(head_bias)
                _, nll0 = _rows_ce(h0, head_weight.detach(), bias0, t0, None, 0.0, chunk_size, token_ce)
            _scatter(nll, rows0, nll0)
    return total, nll


def _rows_ce(h, head_weight, head_bias, t, w, eps, chunk_size, token_ce) -> tuple[Tensor, Tensor]:
    """(sum_i w_i * ce_i, detached [n] ce) of the selected rows h [n, H], t [n], w [n] (None: score
    only): by a kernel's per-token CE, else chunk by chunk (with the fused gradient when one is needed)."""
    if token_ce is not None:
        if not len(t):  # nothing to give the kernel (it may not take empty inputs)
            return h.new_zeros((), dtype=torch.float32), h.new_zeros((0,), dtype=torch.float32)
        ce = token_ce(h, head_weight, head_bias, t, eps).float()
        return (ce if w is None else ce * w).sum(), ce.detach()
    if w is not None and _needs_grad(h, head_weight, head_bias):
        return _FusedLinearCE.apply(h, head_weight, head_bias, t, w, eps, chunk_size)
    return _forward_only(h, head_weight, head_bias, t, w, eps, chunk_size)


def _check_shapes(hidden, head_weight, head_bias, targets, weights) -> None:
    if hidden.dim() != 2 or head_weight.dim() != 2 or hidden.size(1) != head_weight.size(1):
        raise ValueError(
            f"expected hidden [N, H] and head_weight [V, H], got {hidden.shape}, {head_weight.shape}"
        )
    if targets.shape != hidden.shape[:1] or weights.shape != hidden.shape[:1]:
        raise ValueError(
            f"targets and weights must be [{hidden.size(0)}], got {targets.shape}, {weights.shape}"
        )
    if head_bias is not None and head_bias.shape != head_weight.shape[:1]:
        raise ValueError(f"head_bias must be [{head_weight.size(0)}], got {head_bias.shape}")


def _rows(mask: Tensor) -> Tensor | None:
    """Indices where `mask` holds, or None for "every row" (skips a gather and a scatter)."""
    return None if bool(mask.all()) else mask.nonzero().squeeze(1)


def _select(x: Tensor, rows: Tensor | None) -> Tensor:
    return x if rows is None else x.index_select(0, rows)


def _scatter(out: Tensor, rows: Tensor | None, values: Tensor) -> None:
    if rows is None:
        out.copy_(values)
    else:
        out.index_copy_(0, rows, values)


def _detach(x: Tensor | None) -> Tensor | None:
    return None if x is None else x.detach()


def _needs_grad(*tensors: Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _fp32(x: Tensor | None) -> Tensor | None:
    """`x` as float32; a no-op (no copy) when it already is."""
    return None if x is None else x.float()


def _chunk_logits(h: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """[c, H] float32 hidden -> [c, V] float32 logits."""
    return torch.addmm(bias, h, weight.t()) if bias is not None else h @ weight.t()


def _chunk_softmax_(logits: Tensor, t: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """Per-token losses of a [c, V] logits block; turns `logits` into exp(z - max) in place.

    Working in place keeps one [c, V] buffer per chunk (`torch.logsumexp` would allocate a second).

    Returns:
        (ce [c], nll [c], sumexp [c]): ce is the label-smoothed loss (== nll when eps is 0), matching
        `F.cross_entropy`; `logits` / sumexp[:, None] is then the softmax.
    """
    target = logits.gather(1, t[:, None]).squeeze(1)
    mean = logits.mean(dim=-1) if eps else None
    top = logits.amax(dim=-1)
    sumexp = logits.sub_(top[:, None]).exp_().sum(dim=-1)
    lse = top + sumexp.log()
    nll = lse - target
    if not eps:
        return nll, nll, sumexp
    return (1.0 - eps) * nll + eps * (lse - mean), nll, sumexp


def _logits_grad_(exp: Tensor, sumexp: Tensor, t: Tensor, w: Tensor, eps: float) -> Tensor:
    """The hand-written gradient of the loss w.r.t. a chunk's logits z [c, V], in place:

        d/dz_i (sum_j w_j ce_j) = w_i * (softmax(z_i) - (1 - eps) * onehot(t_i) - eps / V)

    with ce_i = (1 - eps) * (lse_i - z_i[t_i]) + eps * (lse_i - mean_v z_iv) (label smoothing eps,
    vocabulary size V). It is autograd's gradient of the reference `(token_ce(z, t, eps) * w).sum()`
    in `plw.loss.weighted`; tests/loss/test_paths_equal.py pins the two to float tolerance.

    Args:
        exp: [c, V] exp(z - max) from `_chunk_softmax_`, overwritten with the gradient.
        sumexp: [c] its row sums.
    """
    grad = exp.mul_((w / sumexp)[:, None])
    grad.scatter_add_(1, t[:, None], (w * (eps - 1.0))[:, None])
    if eps:
        grad.sub_((w * (eps / exp.size(1)))[:, None])
    return grad


def _accumulator(device: torch.device) -> Tensor:
    """A zero scalar for the loss total: float64 (chunk sums then round like one fp32 reduction)
    where the device has it."""
    return torch.zeros((), dtype=torch.float32 if device.type == "mps" else torch.float64, device=device)


def _forward_only(h, weight, bias, t, w, eps: float, chunk_size: int) -> tuple[Tensor, Tensor]:
    """(sum_i w_i ce_i, nll [n]) without gradients; `w=None` skips the weighted sum."""
    weight32, bias32 = _fp32(weight), _fp32(bias)
    nll = torch.empty(h.size(0), dtype=torch.float32, device=h.device)
    total = _accumulator(h.device)
    for start in range(0, h.size(0), chunk_size):
        end = start + chunk_size
        logits = _chunk_logits(h[start:end].float(), weight32, bias32)
        ce, nll[start:end], _ = _chunk_softmax_(logits, t[start:end], eps)
        if w is not None:
            total += (ce * w[start:end]).sum()
    return total.float(), nll


class _FusedLinearCE(torch.autograd.Function):
    """sum_i w_i ce_i of (h @ W.T + b), with the gradients computed chunk by chunk in forward."""

    @staticmethod
    def forward(ctx, h, weight, bias, t, w, eps: float, chunk_size: int):
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        need_b = bias is not None and ctx.needs_input_grad[2]
        # Cast the head once, not per chunk: [V, H] float32 is small next to [N, V] logits.
        weight32, bias32 = _fp32(weight), _fp32(bias)
        n = h.size(0)
        grad_h = torch.empty(n, h.size(1), dtype=torch.float32, device=h.device) if need_h else None
        grad_w = grad_b = None  # allocated by the first chunk (saves a [V, H] zero fill)
        nll = torch.empty(n, dtype=torch.float32, device=h.device)
        total = _accumulator(h.device)
        for start in range(0, n, chunk_size):
            end = min(start + chunk_size, n)
            hc, tc, wc = h[start:end].float(), t[start:end], w[start:end]
            logits = _chunk_logits(hc, weight32, bias32)
            ce, nll[start:end], sumexp = _chunk_softmax_(logits, tc, eps)
            total += (ce * wc).sum()
            # d/dz of sum_i w_i ce_i = w_i * (softmax(z_i) - (1 - eps) onehot(t_i) - eps / V): [c, V],
            # in the logits buffer; equals autograd through the reference in plw.loss.weighted.
            grad = _logits_grad_(logits, sumexp, tc, wc, eps)
            if grad_h is not None:
                torch.mm(grad, weight32, out=grad_h[start:end])
            if need_w:
                grad_w = grad.t() @ hc if grad_w is None else grad_w.addmm_(grad.t(), hc)
            if need_b:
                grad_b = grad.sum(0) if grad_b is None else grad_b.add_(grad.sum(0))
        if need_w and grad_w is None:  # no token weighted
            grad_w = torch.zeros_like(weight32)
        if need_b and grad_b is None:
            grad_b = torch.zeros_like(bias32)
        ctx.save_for_backward(grad_h, grad_w, grad_b)
        ctx.dtypes = (h.dtype, weight.dtype, None if bias is None else bias.dtype)
        ctx.mark_non_differentiable(nll)
        return total.float(), nll

    @staticmethod
    def backward(ctx, grad_total, _grad_nll):
        grad_h, grad_w, grad_b = ctx.saved_tensors
        h_dtype, w_dtype, b_dtype = ctx.dtypes
        # Out of place, so a retained graph can be backpropagated again.
        return (
            _scaled(grad_h, grad_total, h_dtype),
            _scaled(grad_w, grad_total, w_dtype),
            _scaled(grad_b, grad_total, b_dtype),
            None,
            None,
            None,
            None,
        )


def _scaled(grad: Tensor | None, scale: Tensor, dtype: torch.dtype | None) -> Tensor | None:
    return None if grad is None else (grad * scale).to(dtype)
