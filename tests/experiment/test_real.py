"""Real tiny cells (stories260K, 2 optimizer steps): a Ray run, and SIGKILL of the driver then resume.

The uninterrupted reference run is the Ray run when Ray is installed (so one run serves both tests;
Ray and local cells give bit-identical results on CPU), else a local run.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from support import REPO, TINY, alive, reaped, shared

from plw.experiment.celldir import LOG, RESULT, read_json, read_status
from plw.experiment.driver import run_sweep
from plw.experiment.store import ResultStore
from plw.experiment.store_schema import TIMING_COLUMNS
from plw.experiment.study import load_study

pytestmark = pytest.mark.slow
HAS_EVAL = importlib.util.find_spec("plw.evaluation.run") is not None
HAS_RAY = importlib.util.find_spec("ray") is not None


def overrides(output_dir: Path) -> list[str]:
    """The tiny study on the shared data, two PLW levels, small eval."""
    return [
        f"models.stories260K={shared('models/stories260K')}",
        f"datasets.alpaca.path={shared('instruct/alpaca_5000.json')}",
        f"eval.data_dir={shared('bench')}",
        "eval.tasks=[arc_easy]" if HAS_EVAL else "eval.tasks=[]",
        "eval.limit=4",
        "factors.plw=[0.0, 1.0]",
        f"output_dir={output_dir}",
    ]


def tables(study_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    store = ResultStore(study_dir / "results.sqlite")
    return store.results(), store.runs().drop(columns=list(TIMING_COLUMNS))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of the two cells: (study directory, executor name)."""
    out = tmp_path_factory.mktemp("reference")
    study = load_study(TINY, overrides(out))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PLW_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "plw-cache"))
        if not HAS_RAY:
            run_sweep(study, source=str(TINY), executor="local")
            return out, "local"
        # plw's own private local cluster, as `plw sweep --executor ray` starts it: a ray.init here
        # would join any other cluster on the machine (RAY_ADDRESS, `ray start`) instead.
        run_sweep(study, source=str(TINY), executor="ray")
    return out, "ray"


def test_ray_runs_two_cells(reference):
    if not HAS_RAY:
        pytest.skip("ray is not installed (pip install 'plw[ray]')")
    study_dir, executor = reference
    assert executor == "ray"
    results, runs = tables(study_dir)
    assert set(runs.status) == {"done"} and len(runs) == 2
    train = set(results[results.task == "train"].metric)
    assert train == {"weight_l2", "weight_rel_distance", "loss_rsd", "val_prompt_loss", "val_completion_loss",
                     "memorization_bleu"}  # fmt: skip
    layers = ResultStore(study_dir / "results.sqlite").layers()
    assert len(layers) == 2 * 6 * 2  # cells x (5 blocks + other) x (l2, relative)
    assert set(layers.layer) == {"layer_0", "layer_1", "layer_2", "layer_3", "layer_4", "other"}
    if HAS_EVAL:
        assert set(results[results.task == "arc_easy"].metric) >= {"acc", "acc_norm"}
    for cell in (study_dir / "cells").iterdir():
        assert (cell / LOG).stat().st_size > 0 and (cell / "train" / "model").is_dir()
    csv = pd.read_csv(study_dir / "results.csv")
    pd.testing.assert_frame_equal(csv, results, check_dtype=False)


def test_sigkill_of_the_driver_then_resume_equals_an_uninterrupted_run(reference, tmp_path, plw_cache):
    study_dir = tmp_path / "killed"
    command = [sys.executable, "-m", "plw", "sweep", str(TINY), *overrides(study_dir)]
    with (tmp_path / "driver.log").open("wb") as log:
        driver = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    cells = study_dir / "cells"
    deadline = time.time() + 240
    with reaped(driver):  # killed and reaped even when a wait below fails
        while True:
            assert driver.poll() is None, (tmp_path / "driver.log").read_text()[-2000:]
            assert time.time() < deadline, "timed out waiting for one cell done and another running"
            dirs = list(cells.iterdir()) if cells.is_dir() else []
            done = [d for d in dirs if (d / RESULT).exists()]
            running = [d for d in dirs if d not in done and read_status(d).get("state") == "running"]
            if done and running:
                break
            time.sleep(0.2)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
    worker = read_status(running[0]).get("pid")
    for _ in range(50):  # the worker dies with its driver (PR_SET_PDEATHSIG)
        if not alive(worker):
            break
        time.sleep(0.1)
    assert not alive(worker)
    assert not (running[0] / RESULT).exists() and read_status(running[0])["state"] == "running"
    started_before = read_json(done[0] / RESULT)["run"]["started"]

    run_sweep(load_study(TINY, overrides(study_dir)), source=str(TINY), executor="local")
    assert read_json(done[0] / RESULT)["run"]["started"] == started_before  # not rerun
    results, runs = tables(study_dir)
    expected_results, expected_runs = tables(reference[0])
    pd.testing.assert_frame_equal(results, expected_results, check_exact=False, rtol=1e-9)
    pd.testing.assert_frame_equal(runs.drop(columns=["host"]), expected_runs.drop(columns=["host"]))
