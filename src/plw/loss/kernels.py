"""Per-token cross-entropy of a linear head from GPU kernel libraries, weighted by plw.

Two libraries fuse the output head with the cross-entropy on CUDA and can return the loss of every
token (`reduction="none"`) with a correct backward through it, which is all a per-token float weight
needs: the weighted sum is then `(ce * w).sum()`.

- `cce`: Apple's Cut Cross-Entropy (`pip install cut-cross-entropy`), `linear_cross_entropy`. It
  never materialises logits, not even per chunk. Gradient filtering is turned off (`filter_eps=None`)
  so gradients stay exact; it has no head bias and no label smoothing.
- `liger`: Liger Kernel (`pip install liger-kernel`, a version whose fused linear cross-entropy
  accepts `reduction="none"`, 0.8 or later), `liger_fused_linear_cross_entropy`; it supports a head
  bias and label smoothing.

Both need Triton and a CUDA device. `unavailable` says why a backend cannot run, so the trainer can
fall back to plw's own chunked loss with a logged reason. As in `plw.loss.chunked`, tokens of weight
0 skip the differentiable path and are only scored (without gradients) for logging.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable

import torch
from torch import Tensor

from plw.batch import IGNORE_INDEX

BACKENDS = {"cce": "cut_cross_entropy", "liger": "liger_kernel"}
PIP_NAMES = {"cce": "cut-cross-entropy", "liger": "liger-kernel"}
# A per-token CE kernel: (hidden [n, H], weight [V, H], bias [V] | None, targets [n], eps) -> ce [n].
TokenCE = Callable[[Tensor, Tensor, Tensor | None, Tensor, float], Tensor]


def unavailable(backend: str, device: torch.device, *, has_bias: bool, label_smoothing: float) -> str | None:
    """Why `backend` cannot compute this loss here, or None when it can."""
    if backend not in BACKENDS:
        return f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})"
    if device.type != "cuda":
        return f"{backend} runs on CUDA devices only (the model is on {device.type})"
    if importlib.util.find_spec(BACKENDS[backend]) is None:
        return f"{backend} is not installed (pip install {PIP_NAMES[backend]})"
    if backend == "cce" and (has_bias or label_smoothing):
        return "cce supports neither a head bias nor label smoothing"
    return None


def _cce(hidden: Tensor, weight: Tensor, bias: Tensor | None, targets: Tensor, eps: float) -> Tensor:
    from cut_cross_entropy import linear_cross_entropy

    return linear_cross_entropy(hidden, weight, targets, reduction="none", filter_eps=None).float()


def _liger(hidden: Tensor, weight: Tensor, bias: Tensor | None, targets: Tensor, eps: float) -> Tensor:
    from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy

    out = liger_fused_linear_cross_entropy(
        hidden, weight, targets, bias=bias, label_smoothing=eps, reduction="none"
    )
    return (out[0] if isinstance(out, tuple) else out).float()


KERNELS: dict[str, TokenCE] = {"cce": _cce, "liger": _liger}


def kernel_weighted_ce(
    backend: str,
    hidden: Tensor,
    head_weight: Tensor,
    head_bias: Tensor | None,
    targets: Tensor,
    weights: Tensor,
    *,
    label_smoothing: float = 0.0,
    score_zero_weight: bool = True,
) -> tuple[Tensor, Tensor]:
    """`plw.loss.chunked.chunked_weighted_ce`'s contract, computed by a kernel library.

    Args:
        backend: "cce" or "liger" (see `unavailable`).
        hidden: [N, H] final hidden states of the positions that predict `targets` (already shifted).
        head_weight: [V, H]; head_bias: [V] or None.
        targets: [N] token ids, -100 where ignored.
        weights: [N] float loss weights (0 where ignored).
        label_smoothing: as in `F.cross_entropy` (liger only).
        score_zero_weight: also score, without gradient, the non-ignored tokens of weight 0.

    Returns:
        (weighted_sum, nll): float32 scalar sum_i w_i ce_i (differentiable), and [N] float32 detached
        per-token losses, NaN where a token was not scored. With label smoothing the logged value is
        the smoothed loss (the kernels return only that).
    """
    kernel = KERNELS[backend]
    valid = targets.ne(IGNORE_INDEX)
    weighted = valid & weights.ne(0)
    nll = torch.full(targets.shape, math.nan, dtype=torch.float32, device=hidden.device)
    rows = weighted.nonzero().squeeze(1)
    total = hidden.new_zeros((), dtype=torch.float32)
    if rows.numel():
        ce = kernel(hidden.index_select(0, rows), head_weight, head_bias, targets[rows], label_smoothing)
        total = (ce * weights[rows].float()).sum()
        nll[rows] = ce.detach()
    rows0 = (valid & ~weighted).nonzero().squeeze(1)
    if score_zero_weight and rows0.numel():
        bias0 = None if head_bias is None else head_bias.detach()
        with torch.no_grad():
            nll[rows0] = kernel(hidden[rows0].detach(), head_weight.detach(), bias0, targets[rows0], 0.0)
    return total, nll
