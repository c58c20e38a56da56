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
fall back to plw's own chunked loss with a logged reason. A kernel only replaces the per-token
cross-entropy: `plw.loss.chunked.chunked_weighted_ce(..., token_ce=KERNELS[backend])` selects the
rows, weighs them and scores tokens of weight 0 (without gradients, for logging) as on its own path.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import torch
from torch import Tensor

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
