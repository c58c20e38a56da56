"""Test support: fake cell runners (deterministic results without training, so driver tests take
milliseconds); REPO and `shared` (the shared data location) from tests/support.py, re-exported.

Importable by worker subprocesses when this directory and tests/ are on PYTHONPATH (support.pythonpath;
see the `fake_env` fixture).
"""

from __future__ import annotations

import os
import signal

from support import REPO, SHARED, shared

__all__ = ["REPO", "SHARED", "shared", "CALLS", "scores", "ok", "failing", "crash"]


CALLS: list[str] = []  # cell ids run in this process, in order


def scores(factors: dict) -> list[dict]:
    """Rows that depend on every factor, so a mixed-up cell would show."""
    value = (
        0.5
        + 0.4 * factors["plw"]
        - 0.01 * factors["seed"]
        + (0.05 if factors["regularizer"] != "none" else 0)
    )
    return [
        {"task": "arc_easy", "metric": "acc_norm", "value": value, "stderr": 0.01},
        {"task": "train", "metric": "loss_rsd", "value": factors["plw"] / 10, "stderr": None},
    ]


def ok(spec, cell_dir):
    """Succeeds; leaves a training output behind like a real cell."""
    CALLS.append(spec.id)
    (cell_dir / "train").mkdir(exist_ok=True)
    (cell_dir / "train" / "metrics.json").write_text("{}")
    layers = [{"layer": "layer_0", "metric": "weight_l2", "value": spec.factors["plw"]}]
    return {
        "rows": scores(spec.factors),
        "layers": layers,
        "run": {"train_tokens": 1000.0, "train_time_s": 2.0},
    }


def failing(spec, cell_dir):
    """Raises for PLW 0.5, succeeds otherwise."""
    if spec.factors["plw"] == 0.5:
        CALLS.append(spec.id)
        raise RuntimeError("boom: synthetic failure")
    return ok(spec, cell_dir)


def crash(spec, cell_dir):
    """Kills its own process for PLW 0.5 (as the OOM killer would), succeeds otherwise."""
    if spec.factors["plw"] == 0.5:
        os.kill(os.getpid(), signal.SIGKILL)
    return ok(spec, cell_dir)
