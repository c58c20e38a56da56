"""TrainingArguments from a TrainConfig: the warm-up ratio, and problems caught at validation time."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import Trainer

from plw.config import validate
from plw.errors import PLWError
from plw.training.arguments import training_arguments
from plw.training.config import TrainConfig


@pytest.fixture
def records(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text(json.dumps({"instruction": "Say hi.", "output": "hi"}) + "\n")
    return path


def make_config(records, tmp_path, **fields) -> TrainConfig:
    # The model is never loaded: only TrainingArguments are built.
    base = {"model": "unused", "data": {"path": str(records)}, "prompt_loss_weight": 0.1,
            "lr_scheduler": "linear", "learning_rate": 1.0, "output_dir": str(tmp_path / "out")}  # fmt: skip
    return validate(TrainConfig, {**base, **fields}, "train.yaml")


def scheduler_lrs(config: TrainConfig, steps: int) -> list[float]:
    """The learning rate of each optimizer step, from the scheduler Trainer itself creates."""
    trainer = Trainer(model=torch.nn.Linear(2, 2), args=training_arguments(config, has_eval=False))
    trainer.create_optimizer_and_scheduler(num_training_steps=steps)
    lrs = []
    for _ in range(steps):
        lrs.append(trainer.lr_scheduler.get_last_lr()[0])
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    return lrs


def test_warmup_ratio_one_warms_up_over_every_step(records, tmp_path):
    lrs = scheduler_lrs(make_config(records, tmp_path, warmup_ratio=1.0), steps=8)
    assert lrs == pytest.approx([i / 8 for i in range(8)])  # rising all the way, never decaying


def test_warmup_ratio_half_warms_up_over_half_the_steps(records, tmp_path):
    lrs = scheduler_lrs(make_config(records, tmp_path, warmup_ratio=0.5), steps=8)
    assert lrs == pytest.approx([0, 0.25, 0.5, 0.75, 1.0, 0.75, 0.5, 0.25])


def test_small_ratios_round_up_as_before_and_warmup_steps_wins(records, tmp_path):
    args = training_arguments(make_config(records, tmp_path, warmup_ratio=0.03), has_eval=False)
    assert args.get_warmup_steps(100) == 3 and args.get_warmup_steps(10) == 1
    explicit = make_config(records, tmp_path, warmup_ratio=1.0, trainer_args={"warmup_steps": 2})
    assert training_arguments(explicit, has_eval=False).get_warmup_steps(100) == 2


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"seed": -1}, "seed: Input should be greater than or equal to 0"),
        ({"seed": 2**32}, "seed: Input should be less than or equal to 4294967295"),
        ({"learning_rate": float("inf")}, "learning_rate: Input should be a finite number"),
        ({"learning_rate": "nan"}, "learning_rate: Input should be a finite number"),
        ({"epochs": float("inf")}, "epochs: Input should be a finite number"),
        ({"loss": {"minkowski_p": float("nan")}}, "loss.minkowski_p: Input should be a finite"),
        ({"lora": {"alpha": float("inf")}}, "lora.alpha: Input should be a finite number"),
        ({"trainer_args": {"max_grad_norm": float("inf")}}, "trainer_args: Value error, max_grad_norm"),
        ({"report_to": ["tensorbord"]}, "report_to: Value error, unknown logger 'tensorbord'"),
        ({"report_to": ["none", "wandb"]}, "report_to: Value error, 'all' and 'none' stand alone"),
        ({"lr_scheduler": "cosine_annealing"}, "lr_scheduler: Value error, unknown scheduler"),
        ({"trainer_args": {"optim": "adamw_nope"}}, "trainer_args: Value error, Transformers rejects"),
        ({"trainer_args": {"fp17": True}}, "trainer_args: Value error, unknown TrainingArguments"),
        ({"max_steps": 0}, "max_steps: Value error, must be -1 (use epochs) or positive"),
    ],
)  # fmt: skip
def test_problems_are_one_line_naming_the_field(records, tmp_path, fields, message):
    with pytest.raises(PLWError) as err:
        make_config(records, tmp_path, **fields)
    text = str(err.value)
    assert text.startswith("train.yaml: ") and message in text and "\n" not in text


def test_known_values_pass(records, tmp_path):
    config = make_config(records, tmp_path, report_to=["tensorboard"], lr_scheduler="constant_with_warmup",
                         trainer_args={"optim": "sgd", "max_grad_norm": 0.5})  # fmt: skip
    assert config.report_to == ["tensorboard"] and config.trainer_args["optim"] == "sgd"
    assert make_config(records, tmp_path, report_to=["none"]).report_to == ["none"]


def test_validation_sets_up_no_device(records, tmp_path):
    """Building the arguments to check them must not touch accelerate's state (a CUDA context, a
    process group): a sweep driver validates every cell's config in its own process."""
    from accelerate.state import PartialState

    before = dict(PartialState._shared_state)
    make_config(records, tmp_path, trainer_args={"optim": "sgd"})
    assert dict(PartialState._shared_state) == before
