"""A training cut off after a checkpoint resumes from it and ends where an uninterrupted run ends."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from plw.training.config import TrainConfig
from plw.training.run import latest_checkpoint, train


class Crash(RuntimeError):
    pass


class CrashAt(TrainerCallback):
    """Raises once the given optimizer step has ended (after its checkpoint is saved)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise Crash(f"cut off after step {self.step}")


class CountSteps(TrainerCallback):
    def __init__(self):
        self.steps: list[int] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(state.global_step)


def config(stories_path, alpaca_path, out, lora) -> TrainConfig:
    return TrainConfig(
        model=str(stories_path), data={"path": str(alpaca_path), "limit": 32, "skip_bad_records": True},
        prompt_loss_weight=0.1, max_length=96, max_steps=4, batch_size=4, learning_rate=3e-3,
        lr_scheduler="cosine", warmup_ratio=0.0, logging_steps=1, checkpoint_steps=2,
        lora={"r": 4} if lora else None, output_dir=str(out),
    )  # fmt: skip


def weights(out) -> dict[str, torch.Tensor]:
    (file,) = (out / "model").glob("*.safetensors")
    return load_file(file)


@pytest.mark.parametrize("lora", [False, True])
def test_resume_after_a_crash_equals_an_uninterrupted_run(stories_path, alpaca_path, tmp_path, lora):
    whole = train(config(stories_path, alpaca_path, tmp_path / "whole", lora), progress=False)

    cut = config(stories_path, alpaca_path, tmp_path / "cut", lora)
    with pytest.raises(Crash):
        train(cut, progress=False, callbacks=[CrashAt(3)])
    assert latest_checkpoint(tmp_path / "cut").endswith("checkpoint-2")
    assert not (tmp_path / "cut" / "metrics.json").exists()
    counter = CountSteps()
    resumed = train(cut, progress=False, callbacks=[counter])
    assert counter.steps == [3, 4]  # resumed after checkpoint-2, not retrained from the start

    assert resumed["final_loss"] == pytest.approx(whole["final_loss"], rel=1e-6)
    expected, got = weights(tmp_path / "whole"), weights(tmp_path / "cut")
    assert expected.keys() == got.keys()
    for name, tensor in expected.items():
        torch.testing.assert_close(got[name], tensor, rtol=1e-6, atol=1e-7)
