"""Preemption of `plw train`: a real SIGTERM / SIGUSR1 to a real `plw train` process saves a checkpoint
at the next step boundary and exits 75; the rerun resumes and ends equal to an uninterrupted run.

The run goes through a bootstrap (test-only, plw has no such hook) that records each optimizer step
in a file and sleeps 0.3 s after it, so the test can send the signal mid-run: stories260K otherwise
trains 8 steps in well under a second.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
import yaml
from safetensors.torch import load_file
from support import reaped, run_plw

from plw.training.checkpoints import incomplete_reason

STEPS = 8
BOOTSTRAP = textwrap.dedent(
    """
    import os, sys, time
    from transformers import TrainerCallback
    import plw.training.run as run

    class Slow(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            with open(os.environ["PLW_TEST_STEPS"], "a") as handle:
                handle.write(f"{state.global_step}\\n")
            time.sleep(0.3)

    train = run.train

    def slowed(config, **kw):
        return train(config, **{**kw, "callbacks": [*(kw.get("callbacks") or []), Slow()]})

    run.train = slowed
    from plw.cli.main import main
    sys.argv = ["plw", *sys.argv[1:]]
    main()
    """
)


@pytest.fixture(scope="module")
def config_path(tmp_path_factory, stories_path, alpaca_path):
    """A run of 8 steps with a cosine schedule (so the resumed scheduler matters) and no
    checkpoint_steps: the preemption checkpoint alone is what the rerun resumes from."""
    config = {"model": str(stories_path), "prompt_loss_weight": 0.1, "max_length": 96, "batch_size": 4,
              "data": {"path": str(alpaca_path), "limit": 32, "skip_bad_records": True}, "max_steps": STEPS,
              "learning_rate": 3e-3, "lr_scheduler": "cosine", "warmup_ratio": 0.0,
              "logging_steps": 1}  # fmt: skip
    path = tmp_path_factory.mktemp("preempt") / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def uninterrupted(config_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "out"
    assert run_plw("train", config_path, f"output_dir={out}") == 0
    return out


def weights(out) -> dict[str, torch.Tensor]:
    return load_file(out / "model" / "model.safetensors")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1], ids=["SIGTERM", "SIGUSR1"])
def test_signal_saves_a_checkpoint_exits_75_and_the_rerun_equals_an_uninterrupted_run(
    config_path, uninterrupted, tmp_path, signum
):
    out, steps, log, err = tmp_path / "cut", tmp_path / "steps", tmp_path / "train.log", tmp_path / "stderr"
    env = {**os.environ, "PLW_TEST_STEPS": str(steps)}
    with log.open("wb") as output, err.open("wb") as errors:
        command = [sys.executable, "-c", BOOTSTRAP, "train", str(config_path), f"output_dir={out}"]
        process = subprocess.Popen(command, env=env, stdout=output, stderr=errors)
    with reaped(process):
        deadline = time.monotonic() + 240
        while not (steps.is_file() and len(steps.read_text().split()) >= 2):
            assert process.poll() is None, err.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "no second step within 240 s"
            time.sleep(0.05)
        sent = time.monotonic()
        process.send_signal(signum)
        code = process.wait(timeout=60)
        took = time.monotonic() - sent
    text = err.read_text(errors="replace")
    assert code == 75, text[-3000:]
    print(f"{signal.Signals(signum).name}: exited 75 {took:.2f} s after the signal")
    step = int(steps.read_text().split()[-1])
    assert 2 <= step < STEPS
    checkpoint = out / "checkpoints" / f"checkpoint-{step}"
    assert incomplete_reason(checkpoint) is None and not (out / "metrics.json").exists()
    line = text.strip().splitlines()[-1]
    assert line == (
        f"preempted by {signal.Signals(signum).name} at step {step} of {STEPS}: checkpoint saved in "
        f"{checkpoint}; rerun the same command to resume"
    )
    assert "Traceback" not in text

    assert run_plw("train", config_path, f"output_dir={out}") == 0
    history = json.loads((out / "log_history.json").read_text())
    assert [e["step"] for e in history if "loss" in e] == list(range(1, STEPS + 1))
    resumed, expected = (json.loads((d / "metrics.json").read_text()) for d in (out, uninterrupted))
    for key in ("final_loss", "final_prompt_loss", "final_completion_loss"):
        assert resumed[key] == pytest.approx(expected[key], rel=1e-6), key
    want, got = weights(uninterrupted), weights(out)
    assert want.keys() == got.keys()
    for name, tensor in want.items():
        torch.testing.assert_close(got[name], tensor, rtol=1e-6, atol=1e-7)
