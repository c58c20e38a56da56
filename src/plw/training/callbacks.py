"""Trainer callbacks `plw train` adds: a log at the last step, and a stop when training diverges."""

from __future__ import annotations

import math

import torch
from transformers import TrainerCallback

from plw.errors import PLWError


class LogLastStep(TrainerCallback):
    """Log at the last optimizer step too, whatever `logging_steps` is.

    The final prompt and completion losses in metrics.json are the last logged ones; without this, a
    run shorter than `logging_steps` logs none, and a longer one misses the steps after its last log.
    """

    def on_step_end(self, args, state, control, **kwargs):
        if state.max_steps > 0 and state.global_step >= state.max_steps:
            control.should_log = True
        return control


class StopOnNonFinite(TrainerCallback):
    """Stop with a PLWError when the logged loss or gradient norm, or a trained weight, is not finite.

    A diverged run otherwise ends with exit code 0 and writes NaN weights. The loss is checked at
    every log (plw turns off Trainer's `logging_nan_inf_filter`, which would hide it behind an
    average), the trainable weights once at the end.
    """

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key in ("loss", "grad_norm"):
            value = (logs or {}).get(key)
            if isinstance(value, int | float) and not math.isfinite(value):
                raise PLWError(
                    f"training diverged at step {state.global_step}: {key} is {value}; "
                    "lower learning_rate or check the data"
                )

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if model is None:
            return
        with torch.no_grad():
            for name, param in model.named_parameters():
                if param.requires_grad and not bool(torch.isfinite(param).all()):
                    raise PLWError(
                        f"training diverged by step {state.global_step}: weight {name} is not finite; "
                        "lower learning_rate or check the data"
                    )
