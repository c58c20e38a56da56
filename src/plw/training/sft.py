"""`PLWSFTTrainer` / `PLWSFTConfig`: a drop-in for `trl.SFTTrainer` users.

Change one import and add `prompt_loss_weight`:

    from plw import PLWSFTConfig, PLWSFTTrainer
    args = PLWSFTConfig(output_dir="out", prompt_loss_weight=0.1)
    trainer = PLWSFTTrainer(model=model, args=args, train_dataset=dataset)

TRL prepares the dataset as usual (prompt-completion, conversational prompt-completion, or
`messages` with `assistant_only_loss=True`); TRL marks non-completion tokens with label -100. plw then
turns those labels back into a `completion_mask`, restores the labels, and its collator and loss
weight prompt tokens by PLW. `prompt_loss_weight` supersedes `completion_only_loss`: PLW 0 is
completion-only loss, PLW 1 is loss on everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trl import SFTConfig, SFTTrainer

from plw.data.collator import PLWDataCollator
from plw.loss.weighted import IGNORE_INDEX
from plw.training.trainer import _PLW_KEYS, PLWLossMixin


@dataclass
class PLWSFTConfig(SFTConfig):
    """`trl.SFTConfig` plus the PLW settings (see `plw.loss.weighted` for the normalisers)."""

    prompt_loss_weight: float = field(default=1.0, metadata={"help": "PLW in [0, 1]"})
    plw_normalizer: str = field(default="weight_sum", metadata={"help": "weight_sum, nonzero or completion"})
    minkowski_lambda: float = field(default=0.0, metadata={"help": "penalty strength to pre-trained weights"})
    minkowski_p: float = field(default=2.0, metadata={"help": "exponent of the Minkowski penalty"})


def _restore_labels(example: dict[str, Any]) -> dict[str, Any]:
    """TRL's -100 labels become a completion mask; prompt tokens get their labels back."""
    labels = example["labels"]
    return {
        "completion_mask": [int(label != IGNORE_INDEX) for label in labels],
        "labels": list(example["input_ids"]),
    }


class PLWSFTTrainer(PLWLossMixin, SFTTrainer):
    """`trl.SFTTrainer` with a fractional prompt loss weight; takes everything SFTTrainer takes."""

    def __init__(self, *args: Any, **kwargs: Any):
        config = kwargs.get("args")
        if config is None and len(args) > 1:
            config = args[1]
        if not isinstance(config, PLWSFTConfig):
            raise TypeError("PLWSFTTrainer needs args=PLWSFTConfig(...)")
        # TRL must mark the prompt so plw can weight it; PLW decides how much it counts.
        config.completion_only_loss = True
        super().__init__(*args, **kwargs)
        self.data_collator = PLWDataCollator(
            self.processing_class.pad_token_id if hasattr(self.processing_class, "pad_token_id") else 0,
            prompt_loss_weight=config.prompt_loss_weight,
            padding_free=self.padding_free,
            pad_to_multiple_of=config.pad_to_multiple_of,
        )
        self._init_plw(
            prompt_loss_weight=config.prompt_loss_weight,
            normalizer=config.plw_normalizer,
            label_smoothing=config.label_smoothing_factor,
            minkowski_lambda=config.minkowski_lambda,
            minkowski_p=config.minkowski_p,
        )
        # Trainer's own label smoother would otherwise be applied on top of the PLW loss.
        self.label_smoother = None

    def _prepare_dataset(self, dataset, *args: Any, **kwargs: Any):
        dataset = super()._prepare_dataset(dataset, *args, **kwargs)
        if "labels" in (dataset.column_names or []):
            dataset = dataset.map(_restore_labels)
        return dataset

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        self._signature_columns = list(dict.fromkeys([*self._signature_columns, *_PLW_KEYS]))
