"""`plw train`'s callbacks: final losses whatever the logging interval, and a stop on divergence."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from transformers import TrainerControl, TrainerState

from plw.errors import PLWError
from plw.training.callbacks import StopOnNonFinite
from plw.training.config import TrainConfig
from plw.training.run import train


@pytest.fixture
def config_file(tmp_path, stories_path, alpaca_path):
    def write(**overrides):
        config = {"model": str(stories_path), "data": {"path": str(alpaca_path), "limit": 16,
                  "skip_bad_records": True}, "prompt_loss_weight": 0.1, "max_length": 96, "max_steps": 2,
                  "batch_size": 4, "learning_rate": 3e-3, "warmup_ratio": 0.0, "lr_scheduler": "constant",
                  "logging_steps": 10, "output_dir": str(tmp_path / "out"), **overrides}  # fmt: skip
        path = tmp_path / "train.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    return write


def test_final_losses_are_measured_when_logging_steps_exceed_max_steps(plw_cli, config_file, tmp_path):
    code, out, _ = plw_cli("train", str(config_file()))
    assert code in (0, None)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    for key in ("final_loss", "final_prompt_loss", "final_completion_loss"):
        assert math.isfinite(metrics[key]) and metrics[key] > 0, key
    assert "nan" not in out and "final prompt loss" in out
    history = json.loads((tmp_path / "out" / "log_history.json").read_text())
    assert [e["step"] for e in history if "prompt_loss" in e] == [2]  # one log, at the last step


def test_warmup_ratio_one_spans_the_real_optimizer_steps(stories_path, alpaca_path, tmp_path):
    # One epoch of 16 records (less the over-long ones) in batches of 4: Trainer counts the steps.
    config = TrainConfig(model=str(stories_path), prompt_loss_weight=0.1, max_length=96, batch_size=4,
                         data={"path": str(alpaca_path), "limit": 16, "skip_bad_records": True},
                         epochs=1, learning_rate=1e-3, lr_scheduler="linear", warmup_ratio=1.0,
                         logging_steps=1, save_model=False, output_dir=str(tmp_path / "out"))  # fmt: skip
    train(config, progress=False)
    history = json.loads((tmp_path / "out" / "log_history.json").read_text())
    lrs = [e["learning_rate"] for e in history if "learning_rate" in e]  # one per optimizer step
    steps = len(lrs)
    assert steps >= 3 and lrs == pytest.approx([1e-3 * i / steps for i in range(steps)])  # rising to the end


def test_divergence_stops_with_exit_2_and_no_outputs(plw_cli, config_file, tmp_path):
    # A finite but absurd learning rate: the weights overflow after a step or two.
    path = config_file(learning_rate=1e30, max_steps=4)
    code, _, stderr = plw_cli("train", str(path))
    err = " ".join(stderr.split())
    assert code == 2 and "training diverged at step" in err and "Traceback" not in err
    assert [line for line in stderr.splitlines() if "diverged" in line] == [stderr.splitlines()[-1]]
    assert not (tmp_path / "out" / "metrics.json").exists()


@pytest.mark.parametrize("logs", [{"loss": float("nan")}, {"loss": 1.0, "grad_norm": float("inf")}])
def test_non_finite_log_raises(logs):
    state = TrainerState()
    state.global_step = 7
    with pytest.raises(PLWError, match="diverged at step 7"):
        StopOnNonFinite().on_log(None, state, TrainerControl(), logs=logs)
    StopOnNonFinite().on_log(None, state, TrainerControl(), logs={"loss": 2.0, "grad_norm": 0.5})
