"""Faults of a Ray cluster, on a real two-node cluster on this machine (ray_two_nodes.py): a Ray worker
killed while it trains a cell is retried from the cell's last complete checkpoint while the other
cell goes on; a worker that always dies fails with the cause once its retries are spent; a preempted
driver stops the cells on both nodes through their `stop` files.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from fault_support import (
    HERE,
    STEP_SLEEP_ENV,
    assert_same_results,
    overrides,
    start_sweep,
    steps_done,
    wait_until,
)
from support import TINY, processes_mentioning, pythonpath, reaped, stop_processes

from plw.experiment.celldir import ERROR, LOG, RESULT, read_json, read_status
from plw.training.checkpoints import incomplete_reason

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    """The two-node cluster: its address and the environment a driver needs to join it."""
    root = Path(tempfile.mkdtemp(prefix="plw-2n-"))  # short: Ray's socket paths must fit 107 bytes
    token = root / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(auth, PYTHONPATH=pythonpath(HERE))
    with (root / "cluster.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, str(HERE / "ray_two_nodes.py"), str(root)], env=env,
                                stdout=subprocess.PIPE, stderr=log, text=True)  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert line, (root / "cluster.log").read_text()[-3000:]
        address = json.loads(line)["address"]
        # The driver dials 127.0.0.1 itself only with this setting (plw's own loopback rule).
        yield {"address": address, "env": {**auth, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}}
    finally:
        proc.terminate()  # the helper stops both nodes
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=60)
        stop_processes(processes_mentioning(str(root)), timeout=10)  # whatever outlived it
        shutil.rmtree(root, ignore_errors=True)


def ray_args(cluster) -> list[str]:
    return ["--executor", "ray", "--ray-address", cluster["address"]]


def test_a_killed_ray_worker_is_retried_from_its_last_checkpoint(
    cluster, fault_reference, tmp_path, plw_cache
):
    study_dir, log = tmp_path / "study", tmp_path / "sweep.log"
    args = [
        TINY,
        *overrides(study_dir, "train.checkpoint_steps=2", "resources.max_retries=1"),
        *ray_args(cluster),
    ]
    cells = study_dir / "cells"

    def both_training_one_checkpointed():
        dirs = sorted(cells.iterdir()) if cells.is_dir() else []
        running = [d for d in dirs if read_status(d).get("state") == "running" and steps_done(d)]
        past = [d for d in running if len(steps_done(d)) >= 3]
        return past[0] if len(running) == 2 and past else None

    with reaped(start_sweep(args, log, env={**cluster["env"], STEP_SLEEP_ENV: "0.5"})) as driver:
        victim = wait_until(both_training_one_checkpointed, "both cells training, one past checkpoint-2",
                            process=driver, log=log)  # fmt: skip
        other = next(d for d in cells.iterdir() if d != victim)
        status = read_status(victim)
        worker = psutil.Process(status["pid"])
        assert worker.name().startswith("ray::"), worker.name()  # a Ray worker process, not the driver
        os.kill(worker.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        worker.wait(timeout=30)
        steps_before = steps_done(victim)
        saved = [p for p in victim.glob("train/checkpoints/checkpoint-*") if incomplete_reason(p) is None]
        last = max(saved, key=lambda p: int(p.name.removeprefix("checkpoint-")))  # what the retry must use
        code = driver.wait(timeout=600)
        took = time.monotonic() - killed_at
    text = log.read_text(errors="replace")
    assert code == 0, text[-3000:]
    print(f"killed Ray worker {worker.pid} at step {steps_before[-1]}; sweep done {took:.1f} s later")
    assert f"retry  {victim.name} (attempt 2): worker died in Ray: WorkerCrashedError: " in text
    result = read_json(victim / RESULT)
    [retry] = result["run"]["retries"]
    assert retry["pid"] == worker.pid and retry["error"].startswith("worker died in Ray: WorkerCrashedError")
    assert (victim / "error-attempt-1.txt").read_text().startswith("worker died in Ray: WorkerCrashedError")
    assert not (victim / ERROR).exists()
    assert f"resuming from {last}" in (victim / LOG).read_text()
    step = int(last.name.removeprefix("checkpoint-"))
    assert step >= 2 and steps_done(victim) == steps_before + list(range(step + 1, 7))  # not retrained
    assert steps_done(other) == [1, 2, 3, 4, 5, 6] and "retries" not in read_json(other / RESULT)["run"]
    assert_same_results(study_dir, fault_reference)


def write_fake_study(tmp_path: Path, make_study, **sections) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(make_study(**sections).model_dump(mode="json")))
    return path


def test_a_worker_that_always_dies_fails_with_the_cause_after_its_retries(cluster, make_study, tmp_path):
    """sweep_support:crash SIGKILLs its own process for PLW 0.5 on every attempt."""
    study = write_fake_study(tmp_path, make_study, resources={"max_retries": 2})
    log = tmp_path / "sweep.log"
    driver = start_sweep([study, *ray_args(cluster)], log, runner="sweep_support:crash", env=cluster["env"])
    with reaped(driver):
        code = driver.wait(timeout=300)
    text = log.read_text(errors="replace")
    assert code == 1, text[-3000:]
    crashed = tmp_path / "study" / "cells" / "plw=0.5__model=tiny__dataset=toy__seed=0__reg=none"
    status = read_status(crashed)
    assert status["state"] == "failed" and status["error"].startswith(
        "worker died in Ray: WorkerCrashedError"
    )
    assert len(status["retries"]) == 2 and text.count("retry  plw=0.5") == 2
    others = [d for d in crashed.parent.iterdir() if d != crashed]
    assert len(others) == 2 and all((d / RESULT).is_file() for d in others)


def test_a_preempted_driver_stops_the_cells_on_both_nodes(cluster, make_study, tmp_path):
    """The cells' workers get no signal (their raylets started them): only the `stop` files reach them."""
    study = write_fake_study(
        tmp_path, make_study, factors={"plw": [0.0, 1.0], "model": ["tiny"], "dataset": ["toy"]}
    )
    log = tmp_path / "sweep.log"
    args = [study, *ray_args(cluster), "--grace", "10"]
    cells = tmp_path / "study" / "cells"
    with reaped(start_sweep(args, log, runner="fault_support:preemptible", env=cluster["env"])) as driver:
        wait_until(lambda: cells.is_dir() and sum(len(steps_done(d)) >= 2 for d in cells.iterdir()) == 2,
                   "both cells running", process=driver, log=log)  # fmt: skip
        sent = time.monotonic()
        driver.send_signal(signal.SIGTERM)
        code = driver.wait(timeout=60)
        took = time.monotonic() - sent
    text = log.read_text(errors="replace")
    assert code == 75, text[-3000:]
    print(f"preempted Ray sweep exited 75 {took:.1f} s after SIGTERM")
    assert "preempted by SIGTERM: 2 running cell(s) saved a checkpoint" in text
    for cell in cells.iterdir():
        status = read_status(cell)
        assert status["state"] == "interrupted" and status["reason"].startswith(
            "preempted by SIGTERM at step"
        )
        assert len(steps_done(cell)) < 300 and not (cell / RESULT).exists()
