"""Transformers `TrainingArguments` from a `TrainConfig`, built once to check it and once to train.

`TrainConfig` builds them while it is validated (see `check_training_arguments`), so a bad scheduler
setting or `trainer_args` value is one line naming the field before any model loads, not an error
after minutes of loading and tokenising.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import TrainingArguments

if TYPE_CHECKING:
    from plw.training.config import TrainConfig


@dataclass
class PLWTrainingArguments(TrainingArguments):
    """`TrainingArguments` with a warm-up given as a share of the optimizer steps.

    Transformers 5 has only `warmup_steps`, read as a ratio when it is a float below 1, so a ratio of
    1.0 would mean one step. Here the ratio is its own field and turned into steps once Trainer knows
    how many optimizer steps the run has.
    """

    warmup_ratio: float | None = field(
        default=None,
        metadata={"help": "share of the optimizer steps spent warming up, in [0, 1]; replaces warmup_steps"},
    )

    def get_warmup_steps(self, num_training_steps: int) -> int:
        if self.warmup_ratio is None:
            return super().get_warmup_steps(num_training_steps)
        return math.ceil(num_training_steps * self.warmup_ratio)  # rounded up, as Transformers does


class _CheckOnlyArguments(PLWTrainingArguments):
    """Builds without setting up devices.

    `TrainingArguments.__post_init__` reads `self.device`, which resets accelerate's global state and
    creates a CUDA context or a process group. A config check (in a sweep driver, say) must not.
    """

    @property
    def device(self):  # type: ignore[override]
        import torch

        return torch.device("cpu")


def training_arguments(config: TrainConfig, has_eval: bool, *, check_only: bool = False):
    """TrainingArguments from the config; `trainer_args` entries win.

    Raises:
        ValueError, TypeError: Transformers rejects the settings (its message).
    """
    import torch

    args: dict[str, Any] = {
        "output_dir": str(Path(config.output_dir) / "checkpoints"),
        "seed": config.seed,
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps,
        "learning_rate": config.learning_rate,
        "per_device_train_batch_size": config.batch_size,
        "per_device_eval_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "lr_scheduler_type": config.lr_scheduler,
        # An explicit trainer_args.warmup_steps wins over the ratio.
        "warmup_ratio": None if "warmup_steps" in config.trainer_args else config.warmup_ratio,
        "weight_decay": config.regularization.weight_decay,
        "logging_steps": config.logging_steps,
        # A non-finite loss must reach the log (where plw stops the run), not be replaced by an average.
        "logging_nan_inf_filter": False,
        "save_strategy": "steps" if config.checkpoint_steps else "no",
        "save_steps": config.checkpoint_steps or 500,
        "save_total_limit": 1,
        "report_to": config.report_to,
        "bf16": config.precision == "bf16",
        "eval_strategy": "steps" if has_eval and config.eval_steps else "no",
        "eval_steps": config.eval_steps,
        "remove_unused_columns": True,
        "disable_tqdm": True,
    }
    if config.precision == "bf16" and not torch.cuda.is_available():
        args["use_cpu"] = True  # Trainer refuses bf16 without a GPU unless told to train on CPU
    args.update(config.trainer_args)
    return (_CheckOnlyArguments if check_only else PLWTrainingArguments)(**args)


def check_training_arguments(config: TrainConfig) -> None:
    """Build the config's TrainingArguments without side effects; raise ValueError on a problem.

    Transformers' warnings (deprecations, say) are silenced here: a sweep checks every cell's config,
    and training builds the arguments again, where they are shown once per run.
    """
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            training_arguments(config, config.eval_data is not None, check_only=True)
    except (ValueError, TypeError) as err:
        raise ValueError(f"Transformers rejects the training settings: {_first_line(err)}") from None
    finally:
        hf_logging.set_verbosity(verbosity)


def scheduler_names() -> list[str]:
    """The `lr_scheduler_type` values Transformers knows."""
    from transformers import SchedulerType

    return [s.value for s in SchedulerType]


def reporter_names() -> list[str]:
    """The `report_to` values Transformers knows, besides 'all' and 'none'."""
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    return sorted(INTEGRATION_TO_CALLBACK)


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
