"""Trainer callbacks `plw train` adds: a log at the last step, a stop when training diverges, and a
checkpoint-and-stop on a preemption signal."""

from __future__ import annotations

import math

import torch
from transformers import TrainerCallback

from plw import preemption
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


class StopOnPreemption(TrainerCallback):
    """At the first step boundary after SIGTERM / SIGUSR1 (`plw.preemption`), save a checkpoint and stop.

    With several processes (DDP) the ranks agree first, so all of them stop at the same step even
    when the signal reaches them at different moments; a one-number all-reduce per step.
    """

    def on_step_end(self, args, state, control, **kwargs):
        if _on_any_rank(preemption.requested() is not None, args):
            control.should_save = True
            control.should_training_stop = True
        return control


def _on_any_rank(flag: bool, args) -> bool:
    if args.world_size <= 1 or not torch.distributed.is_initialized():
        return flag
    value = torch.tensor([float(flag)], device=args.device)
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
    return bool(value.item())
