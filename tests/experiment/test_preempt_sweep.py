"""Preemption of `plw sweep`: a real SIGTERM to a real driver process (and only to it) reaches the
running worker, which checkpoints at its next step boundary; the cell stays resumable, the driver
exits 75, and the rerun resumes the cell from its checkpoint and ends equal to an uninterrupted run."""

from __future__ import annotations

import signal

import pytest
from fault_support import (
    assert_same_results,
    one_done_one_training,
    overrides,
    start_sweep,
    steps_done,
    wait_until,
)
from support import TINY, alive, reaped

from plw.experiment.celldir import ERROR, LOG, RESULT, read_json, read_status
from plw.experiment.driver import run_sweep
from plw.experiment.study import load_study
from plw.training.checkpoints import incomplete_reason

pytestmark = pytest.mark.slow
MESSAGE = (
    "preempted by SIGTERM: 1 running cell(s) saved a checkpoint and stay resumable, finished cells are "
    "kept; rerun the same command to resume"
)


def test_sigterm_to_the_driver_checkpoints_the_running_cell_and_the_rerun_resumes_it(
    fault_reference, tmp_path, plw_cache
):
    study_dir, log = tmp_path / "study", tmp_path / "sweep.log"
    with reaped(start_sweep([TINY, *overrides(study_dir)], log)) as driver:
        condition, what = one_done_one_training(study_dir / "cells", steps=2), "a cell done and one training"
        done, busy = wait_until(condition, what, process=driver, log=log)
        worker = read_status(busy)["pid"]
        driver.send_signal(signal.SIGTERM)  # the driver alone (its own session): it must pass it on
        code = driver.wait(timeout=120)
    text = log.read_text(errors="replace")
    assert code == 75, text[-3000:]
    assert text.strip().splitlines()[-1] == MESSAGE and "Traceback" not in text
    assert not alive(worker)
    step = steps_done(busy)[-1]
    status = read_status(busy)
    assert status["state"] == "interrupted" and not status["disk_full"]
    assert status["reason"].startswith(f"preempted by SIGTERM at step {step} of 6: checkpoint saved in ")
    assert incomplete_reason(busy / "train" / "checkpoints" / f"checkpoint-{step}") is None  # complete
    assert not (busy / RESULT).exists() and not (busy / ERROR).exists()
    started = read_json(done / RESULT)["run"]["started"]

    states = run_sweep(load_study(TINY, overrides(study_dir)), source=str(TINY), executor="local")
    assert set(states.values()) == {"done"}
    assert read_json(done / RESULT)["run"]["started"] == started  # the finished cell was not rerun
    checkpoint = busy / "train" / "checkpoints" / f"checkpoint-{step}"
    assert f"resuming from {checkpoint}" in (busy / LOG).read_text()
    history = read_json(busy / "train" / "log_history.json")
    assert [e["step"] for e in history if "loss" in e] == [1, 2, 3, 4, 5, 6]
    assert_same_results(study_dir, fault_reference)
