"""`LossConfig`: every setting of the weighted next-token loss, configured once and documented here.

`plw.loss.next_token.NextTokenLoss(config)` runs it: the path (`impl`, `chunk_size`), the per-token
loss (`label_smoothing`) and the normaliser that divides the weighted sum (`normalizer`). The
Minkowski settings belong to the loss too (they add a penalty to it), but the penalty needs the
model's parameters and pre-trained copy, so `plw.training.regularizers` computes it.

The allowed values of `normalizer` and `impl` are stated once, as the Literal types `Normalizer`
(explained in `plw.loss.weighted`) and `LossImpl`; `NORMALIZERS` and `LOSS_IMPLS` are their values.
This module imports no torch, so configs load without it.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import ConfigDict, Field

from plw.config import Strict

__all__ = ["LOSS_IMPLS", "NORMALIZERS", "LossConfig", "LossImpl", "Normalizer"]

Normalizer = Literal["weight_sum", "nonzero", "completion"]
NORMALIZERS: tuple[str, ...] = get_args(Normalizer)
LossImpl = Literal["auto", "chunked", "full", "cce", "liger"]
LOSS_IMPLS: tuple[str, ...] = get_args(LossImpl)


class LossConfig(Strict):
    """The weighted next-token loss's settings; immutable, so one loss object keeps one meaning."""

    # frozen: the path is chosen once from these values (NextTokenLoss.path_for), so changing them
    # afterwards would silently not apply; allow_inf_nan: an infinite smoothing would train to NaN.
    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    normalizer: Normalizer = Field(
        "weight_sum",
        description="the loss denominator, summed over each optimizer step: weight_sum (sum of token "
        "weights), nonzero (count of weighted tokens) or completion (count of completion tokens); "
        "see plw.loss.weighted",
    )
    impl: LossImpl = Field(
        "auto",
        description="how the weighted sum is computed. auto: the chunked loss (no full logits) when exact "
        "for the model, else full; chunked: that loss, an error where it is not exact; full: the model's "
        "[batch, seq, vocab] logits; cce/liger: a CUDA kernel library's fused loss (plw.loss.kernels), "
        "falling back to chunked with a logged reason where it cannot run",
    )
    chunk_size: int = Field(1024, ge=1, description="tokens per [chunk, vocab] block of the chunked loss")
    label_smoothing: float = Field(
        0.0, ge=0, lt=1, description="per-token label smoothing, before PLW weighting"
    )
    minkowski_lambda: float = Field(
        0.0,
        ge=0,
        description="strength of the penalty lambda * sum |theta - theta0|^p to the pre-trained weights "
        "(plw.training.regularizers); 0 disables it",
    )
    minkowski_p: float = Field(2.0, ge=1, description="exponent p of the Minkowski penalty")
