"""`PLWTrainer`: a `transformers.Trainer` that optimises the weighted next-token loss.

The loss itself (the model's forward, the choice of full / chunked / kernel path, the weighted sum
and the per-token NLL) is `plw.loss.next_token.NextTokenLoss`; what stays here is the Transformers
plumbing around it, and why:

- The loss denominator is the normaliser summed over the whole optimizer step: Trainer already
  collects a step's micro-batches before running them (`get_batch_samples`) and passes a count
  as `num_items_in_batch`; plw replaces that count of labels != -100 with the sum of loss weights
  (or the configured normaliser), gathered across processes. Batch 8 x accumulation 1 and batch 2 x
  accumulation 4 then give the same update.
- `prompt_loss` and `completion_loss` (unweighted means of each part) are logged at every logging
  step and as `eval_prompt_loss` / `eval_completion_loss` at every evaluation; batches that carry
  `token_parts` from chat records also log one loss per part (`user_loss`, `assistant_loss`, ...).
- An optional Minkowski penalty lambda * sum |theta - theta0|^p pulls trainable weights towards
  their pre-trained values (one of the paper's comparison regularisers).
- A checkpoint or model save that fills the disk is a one-line `WriteError` naming its directory,
  which is removed; the previous complete checkpoint stays (Trainer rotates only after a save).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import Trainer

from plw.batch import IGNORE_INDEX, LOSS_KEYS
from plw.data.weights import WEIGHT_INPUTS
from plw.files import saving
from plw.loss.config import LossConfig
from plw.loss.next_token import NextTokenLoss
from plw.training.loss_tracker import LossTracker
from plw.training.regularizers import MinkowskiPenalty

_PLW_KEYS = LOSS_KEYS  # the batch keys the loss consumes (kept under this name for plw.training.sft)
# Dataset columns Trainer must keep although the model's forward does not take them: the loss's keys
# and the weight-free features the collator weighs (`plw.data.weights.example_weights`).
DATA_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys([*LOSS_KEYS, *WEIGHT_INPUTS]))
# PLWTrainer's keyword shorthand for the LossConfig fields: keyword -> field.
LOSS_SHORTHAND = {
    "normalizer": "normalizer",
    "label_smoothing": "label_smoothing",
    "minkowski_lambda": "minkowski_lambda",
    "minkowski_p": "minkowski_p",
    "loss_impl": "impl",
    "chunk_size": "chunk_size",
}
__all__ = ["LOSS_SHORTHAND", "PLWLossMixin", "PLWTrainer", "loss_config", "make_loss_config"]


class PLWLossMixin:
    """The weighted loss for any `Trainer` subclass; see the module docstring."""

    # Our loss is divided by the whole step's normaliser, so Trainer must not divide by GA steps again.
    loss_is_scaled_for_ga = True

    def _init_plw(self, loss: LossConfig) -> None:
        # No token weights here: the collator makes them (`plw.data.collator`), the loss reads them.
        self.next_token_loss = NextTokenLoss(loss)
        self._train_tracker, self._eval_tracker = LossTracker(), LossTracker()
        self.minkowski = (
            MinkowskiPenalty(self.model, loss.minkowski_lambda, loss.minkowski_p)
            if loss.minkowski_lambda
            else None
        )

    # ---- normaliser over the optimizer step -------------------------------------------------
    def _get_num_items_in_batch(self, batch_samples: list, device: torch.device) -> torch.Tensor | None:
        """This process's normaliser over `batch_samples` (also used per batch in evaluation)."""
        if not batch_samples or "loss_weights" not in batch_samples[0]:
            return super()._get_num_items_in_batch(batch_samples, device)
        share = self.next_token_loss.normaliser
        total = sum(share(b["labels"], b["loss_weights"], b.get("completion_mask")) for b in batch_samples)
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
        batch = {k: inputs.pop(k) for k in LOSS_KEYS if k in inputs}
        labels, weights = batch["labels"], batch["loss_weights"]
        completion = batch.get("completion_mask")
        # Divided by the step's normaliser when Trainer gives it, else by this batch's own.
        result = self.next_token_loss(
            model, inputs, labels, weights, completion_mask=completion, denominator=num_items_in_batch
        )
        loss = result.loss
        if model.training and self._across_devices():
            loss = loss * self.accelerator.num_processes  # DDP averages gradients over processes
        self._track(result, completion, batch.get("token_parts"), model.training)
        if self.minkowski is not None and model.training:
            loss = loss + self.minkowski() / self.current_gradient_accumulation_steps
        return (loss, result.outputs) if return_outputs else loss

    def _path(self, model: torch.nn.Module) -> str:
        """The loss path for this model ("full", "chunked", "cce" or "liger"), chosen once."""
        return self.next_token_loss.path_for(model)

    def _track(self, result, completion, parts, training: bool) -> None:
        """Add a micro-batch's per-token NLL to the tracker, split by completion mask and part."""
        with torch.no_grad():
            targets = result.targets
            completion = torch.ones_like(targets) if completion is None else completion[:, 1:]
            tracker = self._train_tracker if training else self._eval_tracker
            parts = None if parts is None else parts[:, 1:]
            tracker.add(result.nll, targets.ne(IGNORE_INDEX), completion.bool(), parts)

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


class SaveErrors:
    """Trainer saves that fail on a full disk end in one line naming the directory (`plw.files.saving`)."""

    def _save_checkpoint(self, model, trial):
        from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

        folder = Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        with saving(folder):
            super()._save_checkpoint(model, trial)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False):
        if output_dir is None:  # Trainer's whole output_dir: never removed on a failure
            return super().save_model(output_dir, _internal_call)
        with saving(output_dir):
            return super().save_model(output_dir, _internal_call)


class PLWTrainer(SaveErrors, PLWLossMixin, Trainer):
    """`transformers.Trainer` with a fractional prompt loss weight.

    The train and eval datasets hold the weight-free features of `plw.data.tokenize` (at least
    `input_ids` and `completion_mask`), or a user's own `loss_weights`. The data collator weighs
    them: without a `data_collator`, a `PLWDataCollator` built from `prompt_loss_weight` and
    `completion_loss_weight`; with one (a `PLWDataCollator(weights=TokenWeights(...))` for chat
    weights), the weights are its own and these two are not given.

    Args:
        prompt_loss_weight: PLW in [0, 1] of the default collator; None: examples carry
            `loss_weights`.
        completion_loss_weight: weight in [0, 1] of completion tokens of the default collator.
        loss: the loss settings (`plw.loss.config.LossConfig`, which documents each); default
            LossConfig().
        normalizer, label_smoothing, minkowski_lambda, minkowski_p, loss_impl, chunk_size: a
            shorthand for `loss=LossConfig(...)` with these fields (`loss_impl` is its `impl`);
            not together with `loss`.
        **kwargs: everything `transformers.Trainer` takes.
    """

    def __init__(
        self,
        *args: Any,
        prompt_loss_weight: float | None = None,
        loss: LossConfig | None = None,
        normalizer: str | None = None,
        label_smoothing: float | None = None,
        minkowski_lambda: float | None = None,
        minkowski_p: float | None = None,
        loss_impl: str | None = None,
        chunk_size: int | None = None,
        completion_loss_weight: float = 1.0,
        **kwargs: Any,
    ):
        loss = loss_config(
            loss,
            normalizer=normalizer,
            label_smoothing=label_smoothing,
            minkowski_lambda=minkowski_lambda,
            minkowski_p=minkowski_p,
            loss_impl=loss_impl,
            chunk_size=chunk_size,
        )  # before the model is touched: a bad setting fails first
        kwargs["data_collator"] = default_collator(
            kwargs.get("data_collator"),
            kwargs.get("processing_class"),
            prompt_loss_weight,
            completion_loss_weight,
        )
        super().__init__(*args, **kwargs)
        # Trainer drops dataset columns the model's forward does not take; the collator and the loss
        # consume ours.
        self._set_signature_columns_if_needed()
        self._signature_columns = list(dict.fromkeys([*self._signature_columns, *DATA_COLUMNS]))
        self._init_plw(loss)


def loss_config(loss: LossConfig | None = None, **shorthand: Any) -> LossConfig:
    """`loss`, or the LossConfig of PLWTrainer's keyword shorthand (`LOSS_SHORTHAND`; None: not given).

    Raises:
        ValueError: `loss` and a shorthand keyword both given; a value LossConfig refuses.
    """
    given = {key: value for key, value in shorthand.items() if value is not None}
    if loss is None:
        return make_loss_config({LOSS_SHORTHAND[key]: value for key, value in given.items()},
                                {field: key for key, field in LOSS_SHORTHAND.items()})  # fmt: skip
    if given:
        raise ValueError(f"give loss=LossConfig(...) or {', '.join(given)}, not both")
    return loss


def make_loss_config(values: dict[str, Any], names: dict[str, str]) -> LossConfig:
    """LossConfig(**values); a refused value is a ValueError naming the caller's key for it (`names`:
    LossConfig field -> the key the user wrote)."""
    from pydantic import ValidationError

    try:
        return LossConfig(**values)
    except ValidationError as err:
        first = err.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "loss"
        got = f" (got {first['input']!r})" if "input" in first else ""
        raise ValueError(f"{names.get(field, field)}: {first['msg']}{got}") from None


def default_collator(collator: Any, tokenizer: Any, prompt: float | None, completion: float) -> Any:
    """The given collator, or a `PLWDataCollator` weighing by (prompt, completion).

    Raises:
        ValueError: a collator and weights both given (the weights would be silently unused); a
            weight outside [0, 1].
    """
    from plw.data.collator import PLWDataCollator

    if collator is None:
        pad = getattr(tokenizer, "pad_token_id", None) or 0
        return PLWDataCollator(pad, prompt_loss_weight=prompt, completion_loss_weight=completion)
    if prompt is not None or completion != 1.0:
        raise ValueError(
            "give prompt_loss_weight / completion_loss_weight or a data_collator, not both: the "
            "collator weighs the tokens"
        )
    return collator
