"""Two CPU processes under `accelerate launch` normalise over the whole step like one process does."""

import os
import shutil
import subprocess
import sys

import pytest
import yaml
from safetensors.torch import load_file


def write_config(tmp_path, stories_path, alpaca_path, name, **overrides):
    config = {
        "model": str(stories_path),
        "data": {"path": str(alpaca_path), "limit": 40, "skip_bad_records": True},
        "prompt_loss_weight": 0.1,
        "max_length": 96,
        "max_steps": 2,
        "batch_size": 4,
        "learning_rate": 0.05,
        "lr_scheduler": "constant",
        "warmup_ratio": 0.0,
        "logging_steps": 1,
        "output_dir": str(tmp_path / name),
        "trainer_args": {"optim": "sgd", "use_cpu": True, "train_sampling_strategy": "sequential"},
        **overrides,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_two_processes_equal_one_process_with_accumulation(tmp_path, stories_path, alpaca_path):
    if shutil.which("accelerate", path=os.path.dirname(sys.executable)) is None:
        pytest.skip("accelerate launcher not installed")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    single = write_config(tmp_path, stories_path, alpaca_path, "single", gradient_accumulation_steps=2)
    double = write_config(tmp_path, stories_path, alpaca_path, "double")
    subprocess.run(
        [sys.executable, "-m", "plw", "train", str(single)], check=True, env=env, capture_output=True
    )
    # `--multi_gpu` is accelerate's torchrun launcher; with use_cpu the processes train on CPU over gloo
    # (`--cpu` alone starts a single process unless MPI is set up).
    launcher = os.path.join(os.path.dirname(sys.executable), "accelerate")
    result = subprocess.run(
        [
            launcher,
            "launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "-m",
            "plw",
            "train",
            str(double),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    a = load_file(tmp_path / "single" / "model" / "model.safetensors")
    b = load_file(tmp_path / "double" / "model" / "model.safetensors")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5
