"""The one entry point of the weighted next-token loss: `NextTokenLoss(LossConfig)`.

Training and the public `plw_loss` share it. Per-token float weights are the only carrier of PLW (and
of the completion weight, or any other weighting): the loss object runs the model, computes

    weighted_sum = sum_t w_t * ce_t

over the shifted positions, and divides it by a normaliser (`config.normalizer`, see
`plw.loss.weighted`). Under gradient accumulation and several processes the normaliser is a total
over the whole optimizer step, which only the trainer sees: it sums `NextTokenLoss.normaliser` over
the step's micro-batches, gathers it across processes and passes it as `denominator`; without one,
a micro-batch is divided by its own normaliser.

How the sum is computed (the path) is chosen once per model, on the first call:

- "full": the model's logits [B, T, V], then `plw.loss.weighted.logits_weighted_ce` (the reference,
  also what `plw_loss` runs);
- "chunked": the output head is swapped for a pass-through during the forward pass
  (`plw.loss.head`) and `plw.loss.chunked.chunked_weighted_ce` applies it chunk by chunk;
- "cce" / "liger": the same swap, then a CUDA kernel library (`plw.loss.kernels`).

`impl="auto"` takes the chunked path where it is exact for the model, else full logits; a kernel
backend that cannot run here falls back to chunked, and "chunked" where it is not exact is an error.
Each fallback is logged (logger "plw.loss") with its reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from plw.loss import kernels
from plw.loss.chunked import chunked_weighted_ce
from plw.loss.config import LossConfig
from plw.loss.head import hidden_states_instead_of_logits, supports_chunked_loss, unwrap_model
from plw.loss.weighted import divide, logits_weighted_ce, normaliser, shift_targets

__all__ = ["LossConfig", "NextTokenLoss", "NextTokenResult"]
logger = logging.getLogger("plw.loss")


@dataclass
class NextTokenResult:
    """What one call of `NextTokenLoss` returns.

    Attributes:
        outputs: the model's output; its `logits` is None on the fused paths (the model returned
            hidden states there, which nothing downstream may mistake for logits).
        weighted_sum: float32 scalar sum_t w_t * ce_t, differentiable.
        nll: [B, T-1] float32, detached, the plain NLL of every predicted token (no label smoothing,
            except on the liger path with label smoothing, whose kernel returns only the smoothed
            loss); NaN where the target is ignored.
        targets: [B, T-1] the shifted labels (-100 where nothing is predicted).
        weights: [B, T-1] float32 the shifted weights, 0 where the target is ignored.
        loss: float32 scalar weighted_sum / denominator (`plw.loss.weighted.divide`: 0, with a
            gradient path, when nothing is weighted), differentiable.
    """

    outputs: Any
    weighted_sum: Tensor
    nll: Tensor
    targets: Tensor
    weights: Tensor
    loss: Tensor


class NextTokenLoss:
    """The weighted next-token loss of a causal LM: owns the path, the head swap and the division.

    Args:
        config: the loss settings (`plw.loss.config.LossConfig`, default LossConfig(); the Minkowski
            ones are not used here).

    Raises:
        TypeError: `config` is not a LossConfig.
    """

    def __init__(self, config: LossConfig | None = None):
        if config is None:
            config = LossConfig()
        if not isinstance(config, LossConfig):
            raise TypeError(f"NextTokenLoss takes a LossConfig (plw.loss.config), got {config!r}")
        self.config = config
        self.path: str | None = None  # chosen on the first call (or `path_for`)

    def __call__(
        self,
        model: nn.Module,
        model_inputs: dict[str, Any],
        labels: Tensor,
        loss_weights: Tensor,
        *,
        completion_mask: Tensor | None = None,
        denominator: Tensor | float | None = None,
    ) -> NextTokenResult:
        """Run `model(**model_inputs, use_cache=False)`, weigh its next-token losses and divide.

        Args:
            model: the model as the trainer holds it (DDP / accelerate / peft wrappers are fine).
            model_inputs: the forward's inputs (input_ids, attention_mask, position_ids, ...), without
                labels: the model must not compute its own loss.
            labels: [B, T] token ids, -100 where nothing is predicted.
            loss_weights: [B, T] float weight of predicting each token.
            completion_mask: [B, T] 1 on completion tokens; needed for the normaliser "completion"
                when no denominator is given.
            denominator: the normaliser to divide by, e.g. `normaliser` summed over an optimizer
                step and across processes; None divides by this batch's own normaliser.
        """
        targets, weights = shift_targets(labels, loss_weights)
        path = self.path_for(model)
        eps = self.config.label_smoothing
        if path == "full":
            outputs = model(**model_inputs, use_cache=False)
            weighted_sum, nll = logits_weighted_ce(outputs.logits[:, :-1, :], targets, weights, eps)
        else:
            outputs, weighted_sum, nll = self._fused(model, model_inputs, targets, weights, path)
        if denominator is None:
            denominator = self.normaliser(labels, loss_weights, completion_mask)
        loss = divide(weighted_sum, denominator)
        return NextTokenResult(outputs, weighted_sum, nll, targets, weights, loss)

    def normaliser(
        self, labels: Tensor, loss_weights: Tensor, completion_mask: Tensor | None = None
    ) -> Tensor:
        """A micro-batch's share of the denominator under `config.normalizer` (a float32 scalar).

        Args:
            labels: [B, T] token ids, -100 where nothing is predicted.
            loss_weights: [B, T] float weights.
            completion_mask: [B, T] 1 on completion tokens; needed for the normaliser "completion".
        """
        return normaliser(loss_weights, labels, completion_mask, self.config.normalizer)

    def path_for(self, model: nn.Module) -> str:
        """The path for `model`: chosen on the first call, then kept (one model per loss object)."""
        if self.path is None:
            self.path = self._choose(model)
        return self.path

    def _choose(self, model: nn.Module) -> str:
        impl = self.config.impl
        if impl == "full":
            return "full"
        ok, reason = supports_chunked_loss(model)
        if not ok:
            if impl == "chunked":
                raise ValueError(f"loss impl 'chunked' is not possible here: {reason}")
            logger.warning("plw: full-logit loss (%s loss unavailable: %s)", impl, reason)
            return "full"
        if impl in ("auto", "chunked"):
            return "chunked"
        head = unwrap_model(model).get_output_embeddings()
        # Looked up on the module at call time, so tests can stand in for an installed library.
        why = kernels.unavailable(
            impl,
            head.weight.device,
            has_bias=head.bias is not None,
            label_smoothing=self.config.label_smoothing,
        )
        if why is not None:
            logger.warning("plw: chunked loss instead of %s: %s", impl, why)
            return "chunked"
        logger.info("plw: %s kernel for the weighted loss", impl)
        return impl

    def _fused(self, model, model_inputs, targets: Tensor, weights: Tensor, path: str):
        """Hidden states from the model's own forward, then head + weighted CE without full logits."""
        with hidden_states_instead_of_logits(model) as (head_weight, head_bias):
            outputs = model(**model_inputs, use_cache=False)
        hidden = outputs.logits[:, :-1, :]
        args = (hidden.reshape(-1, hidden.size(-1)), head_weight, head_bias, targets.reshape(-1),
                weights.reshape(-1))  # fmt: skip
        token_ce = None if path == "chunked" else kernels.KERNELS[path]  # a kernel's per-token CE
        weighted_sum, nll = chunked_weighted_ce(
            *args, label_smoothing=self.config.label_smoothing, chunk_size=self.config.chunk_size,
            token_ce=token_ce,
        )  # fmt: skip
        outputs.logits = None
        return outputs, weighted_sum, nll.view(targets.shape)
