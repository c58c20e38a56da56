"""`PLWTrainer`: a `transformers.Trainer` that optimises the prompt-loss-weighted loss.

What it changes in Trainer, and why:

- `compute_loss` runs the model without labels and applies `plw_loss` to the logits with the
  batch's `loss_weights`, so PLW never goes through -100 labels.
- The loss denominator is the normaliser summed over the whole optimizer step: Trainer already
  collects a step's micro-batches before running them (`get_batch_samples`) and passes a count
  as `num_items_in_batch`; plw replaces that count of labels != -100 with the sum of loss weights
  (or the configured normaliser), gathered across processes. Batch 8 x accumulation 1 and batch 2 x
  accumulation 4 then give the same update.
- `prompt_loss` and `completion_loss` (unweighted means of each part) are logged at every logging
  step and as `eval_prompt_loss` / `eval_completion_loss` at every evaluation.
- An optional Minkowski penalty lambda * sum |theta - theta0|^p pulls trainable weights towards
  their pre-trained values (one of the paper's comparison regularisers).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import Trainer
from transformers.utils import logging as hf_logging

from plw.loss.weighted import NORMALIZERS, normaliser, shift_targets, token_ce
from plw.training.loss_tracker import LossTracker
from plw.training.regularizers import MinkowskiPenalty

logger = hf_logging.get_logger("plw.trainer")
_PLW_KEYS = ("labels", "loss_weights", "completion_mask", "seq_lengths")
LOSS_IMPLS = ("auto", "chunked", "full", "cce", "liger")


class PLWLossMixin:
    """The PLW loss for any `Trainer` subclass; see the module docstring."""

    # Our loss is divided by the whole step's normaliser, so Trainer must not divide by GA steps again.
    loss_is_scaled_for_ga = True

    def _init_plw(
        self,
        *,
        prompt_loss_weight: float | None,
        normalizer: str,
        label_smoothing: float,
        minkowski_lambda: float,
        minkowski_p: float,
        loss_impl: str = "auto",
        chunk_size: int = 1024,
    ) -> None:
        if normalizer not in NORMALIZERS:
            raise ValueError(f"normalizer must be one of {NORMALIZERS}, got {normalizer!r}")
        if prompt_loss_weight is not None and not 0.0 <= prompt_loss_weight <= 1.0:
            raise ValueError(f"prompt_loss_weight must be in [0, 1], got {prompt_loss_weight}")
        self.prompt_loss_weight = prompt_loss_weight
        self.plw_normalizer = normalizer
        self.plw_label_smoothing = label_smoothing
        if loss_impl not in LOSS_IMPLS:
            raise ValueError(f"loss_impl must be one of {', '.join(LOSS_IMPLS)}, got {loss_impl!r}")
        self.loss_impl = loss_impl
        self.chunk_size = chunk_size
        self._loss_path: str | None = None
        self._train_tracker, self._eval_tracker = LossTracker(), LossTracker()
        self.minkowski = (
            MinkowskiPenalty(self.model, minkowski_lambda, minkowski_p) if minkowski_lambda else None
        )

    # ---- normaliser over the optimizer step -------------------------------------------------
    def _get_num_items_in_batch(self, batch_samples: list, device: torch.device) -> torch.Tensor | None:
        """This process's normaliser over `batch_samples` (also used per batch in evaluation)."""
        if not batch_samples or "loss_weights" not in batch_samples[0]:
            return super()._get_num_items_in_batch(batch_samples, device)
        total = sum(
            normaliser(b["loss_weights"], b["labels"], b.get("completion_mask"), self.plw_normalizer)
            for b in batch_samples
        )
        return total.to(device)

    def get_batch_samples(self, epoch_iterator, num_batches: int, device: torch.device):
        """Training only: the step's normaliser summed over every process."""
        batch_samples, local = super().get_batch_samples(epoch_iterator, num_batches, device)
        if local is not None and self._across_devices():
            local = self.accelerator.gather(local.reshape(1)).sum()
        return batch_samples, local

    def _across_devices(self) -> bool:
        return bool(self.args.average_tokens_across_devices and self.args.world_size > 1)

    # ---- loss ---------------------------------------------------------------------------------
    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | None = None,
    ):
        plw_inputs = {k: inputs.pop(k) for k in _PLW_KEYS if k in inputs}
        labels, weights = plw_inputs["labels"], plw_inputs["loss_weights"]
        completion = plw_inputs.get("completion_mask")
        targets, shifted = shift_targets(labels, weights)
        path = self._path(model)
        if path != "full":
            outputs, weighted_sum, nll = self._fused_forward(model, inputs, targets, shifted, path)
        else:
            outputs = model(**inputs, use_cache=False)
            ce = token_ce(outputs.logits[:, :-1, :], targets, self.plw_label_smoothing)
            weighted_sum = (ce * shifted).sum()
            nll = ce.detach()
            if self.plw_label_smoothing:
                nll = token_ce(outputs.logits[:, :-1, :].detach(), targets)  # log the plain NLL
        if num_items_in_batch is None:
            num_items_in_batch = normaliser(weights, labels, completion, self.plw_normalizer)
        loss = weighted_sum / torch.as_tensor(num_items_in_batch).float().clamp(min=1e-8)
        if model.training and self._across_devices():
            loss = loss * self.accelerator.num_processes  # DDP averages gradients over processes
        self._track(nll, targets, completion, model.training)
        if self.minkowski is not None and model.training:
            loss = loss + self.minkowski() / self.current_gradient_accumulation_steps
        return (loss, outputs) if return_outputs else loss

    def _path(self, model: torch.nn.Module) -> str:
        """The loss path for this model, chosen once: "full", "chunked", "cce" or "liger".

        "auto" is the chunked loss when it is exact for the model (plain linear head), else full
        logits. A kernel backend that cannot run here (no CUDA, not installed, unsupported option)
        falls back the same way, with the reason logged; "chunked" where it is not exact is an error.
        """
        if self._loss_path is None:
            self._loss_path = self._choose_path(model)
        return self._loss_path

    def _choose_path(self, model: torch.nn.Module) -> str:
        from plw.loss.head import supports_chunked_loss, unwrap_model
        from plw.loss.kernels import unavailable

        if self.loss_impl == "full":
            return "full"
        ok, reason = supports_chunked_loss(model)
        if not ok:
            if self.loss_impl == "chunked":
                raise ValueError(f"loss_impl 'chunked' is not possible here: {reason}")
            logger.warning("plw: full-logit loss (%s loss unavailable: %s)", self.loss_impl, reason)
            return "full"
        if self.loss_impl in ("auto", "chunked"):
            return "chunked"
        head = unwrap_model(model).get_output_embeddings()
        why = unavailable(self.loss_impl, head.weight.device, has_bias=head.bias is not None,
                          label_smoothing=self.plw_label_smoothing)  # fmt: skip
        if why is not None:
            logger.warning("plw: chunked loss instead of %s: %s", self.loss_impl, why)
            return "chunked"
        logger.info("plw: %s kernel for the weighted loss", self.loss_impl)
        return self.loss_impl

    def _fused_forward(self, model, inputs, targets, shifted, path: str):
        """Hidden states from the model's own forward, then head + weighted CE without full logits."""
        from plw.loss.chunked import chunked_weighted_ce
        from plw.loss.head import hidden_states_instead_of_logits
        from plw.loss.kernels import kernel_weighted_ce

        with hidden_states_instead_of_logits(model) as (head_weight, head_bias):
            outputs = model(**inputs, use_cache=False)
        hidden = outputs.logits[:, :-1, :]
        args = (hidden.reshape(-1, hidden.size(-1)), head_weight, head_bias, targets.reshape(-1),
                shifted.reshape(-1))  # fmt: skip
        if path == "chunked":
            weighted_sum, nll = chunked_weighted_ce(
                *args, label_smoothing=self.plw_label_smoothing, chunk_size=self.chunk_size
            )
        else:
            weighted_sum, nll = kernel_weighted_ce(path, *args, label_smoothing=self.plw_label_smoothing)
        outputs.logits = None  # they were hidden states; nothing downstream may mistake them for logits
        return outputs, weighted_sum, nll.view(targets.shape)

    def _track(self, ce, targets, completion, training: bool) -> None:
        with torch.no_grad():
            completion = torch.ones_like(targets) if completion is None else completion[:, 1:]
            tracker = self._train_tracker if training else self._eval_tracker
            tracker.add(ce, targets.ne(-100), completion.bool())

    # ---- logging ------------------------------------------------------------------------------
    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:
            logs.update(self._train_tracker.pop(self._gather))
        super().log(logs, start_time)

    def evaluation_loop(self, *args, **kwargs):
        self._eval_tracker = LossTracker()
        output = super().evaluation_loop(*args, **kwargs)
        prefix = kwargs.get("metric_key_prefix", args[4] if len(args) > 4 else "eval")
        for name, value in self._eval_tracker.pop(self._gather).items():
            output.metrics[f"{prefix}_{name}"] = value
        return output

    def _gather(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.accelerator.gather(tensor) if self.args.world_size > 1 else tensor


class PLWTrainer(PLWLossMixin, Trainer):
    """`transformers.Trainer` with a fractional prompt loss weight.

    The train and eval datasets hold `input_ids` and `completion_mask` (and optionally
    `loss_weights`, which then take precedence), as produced by `plw.data.tokenize`. Without a
    `data_collator`, a `PLWDataCollator` builds `loss_weights` from `prompt_loss_weight`.

    Args:
        prompt_loss_weight: PLW in [0, 1] for examples without precomputed `loss_weights`.
        normalizer: "weight_sum" (default), "nonzero" or "completion"; see `plw.loss.weighted`.
        label_smoothing: per-token label smoothing, applied before weighting.
        minkowski_lambda: strength of the penalty to the pre-trained weights (0 disables it).
        minkowski_p: the penalty's exponent p.
        loss_impl: "auto" (chunked when exact for the model, else full logits), "chunked", "full",
            or a GPU kernel backend "cce" / "liger" (`plw.loss.kernels`; falls back to chunked with a
            logged reason where it cannot run).
        chunk_size: tokens per [chunk, vocab] block of the chunked loss.
        **kwargs: everything `transformers.Trainer` takes.
    """

    def __init__(
        self,
        *args: Any,
        prompt_loss_weight: float | None = None,
        normalizer: str = "weight_sum",
        label_smoothing: float = 0.0,
        minkowski_lambda: float = 0.0,
        minkowski_p: float = 2.0,
        loss_impl: str = "auto",
        chunk_size: int = 1024,
        **kwargs: Any,
    ):
        if kwargs.get("data_collator") is None:
            from plw.data.collator import PLWDataCollator

            tokenizer = kwargs.get("processing_class")
            pad = getattr(tokenizer, "pad_token_id", None) or 0
            kwargs["data_collator"] = PLWDataCollator(pad, prompt_loss_weight=prompt_loss_weight)
        super().__init__(*args, **kwargs)
        # Trainer drops dataset columns the model's forward does not take; ours are consumed by the loss.
        self._set_signature_columns_if_needed()
        self._signature_columns = list(
            dict.fromkeys([*self._signature_columns, *_PLW_KEYS, "completion_mask"])
        )
        self._init_plw(
            prompt_loss_weight=prompt_loss_weight,
            normalizer=normalizer,
            label_smoothing=label_smoothing,
            minkowski_lambda=minkowski_lambda,
            minkowski_p=minkowski_p,
            loss_impl=loss_impl,
            chunk_size=chunk_size,
        )
