"""Test support for the fault tests: real tiny cells whose optimizer steps are slowed down, so a test
can strike mid-training, and a `plw sweep` subprocess that runs them.

Importable by worker subprocesses and Ray workers when this directory and tests/ are on PYTHONPATH
(support.pythonpath). The slowdown is a test-only TrainerCallback added by the runner below; plw
itself has no such hook.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
from support import REPO, pythonpath, shared

from plw.experiment.celldir import RESULT
from plw.experiment.store import ResultStore
from plw.experiment.store_schema import TIMING_COLUMNS

HERE = Path(__file__).resolve().parent
STEP_SLEEP_ENV = "PLW_TEST_STEP_SLEEP"
STEPS_FILE = "test-steps.txt"  # in the cell directory: one line per optimizer step of this attempt


def overrides(output_dir: Path, *extra: str) -> list[str]:
    """The tiny study on the shared data: two PLW levels, 6 steps, ARC-Easy on 4 items."""
    return [
        f"models.stories260K={shared('models/stories260K')}",
        f"datasets.alpaca.path={shared('instruct/alpaca_5000.json')}",
        f"eval.data_dir={shared('bench')}",
        "eval.tasks=[arc_easy]",
        "eval.limit=4",
        "factors.plw=[0.0, 1.0]",
        "train.max_steps=6",
        "train.lr_scheduler=cosine",
        f"output_dir={output_dir}",
        *extra,
    ]


def slow_steps(cell_dir: Path):
    """A TrainerCallback that records each optimizer step in the cell directory, then sleeps."""
    from transformers import TrainerCallback

    class SlowSteps(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            with (cell_dir / STEPS_FILE).open("a") as handle:
                handle.write(f"{state.global_step}\n")
            time.sleep(float(os.environ.get(STEP_SLEEP_ENV, "0.3")))

    return SlowSteps()


def slow_cell(spec, cell_dir: Path):
    """The real cell runner, training with `slow_steps`."""
    import plw.training.run as run
    from plw.experiment.runner import run_cell

    train = run.train

    def slowed(config, **kw):
        return train(config, **{**kw, "callbacks": [*(kw.get("callbacks") or []), slow_steps(cell_dir)]})

    run.train = slowed
    try:
        return run_cell(spec, cell_dir)
    finally:
        run.train = train


def steps_done(cell_dir: Path) -> list[int]:
    try:
        return [int(x) for x in (cell_dir / STEPS_FILE).read_text().split()]
    except OSError:
        return []


# `plw sweep ARGS` with the cells run by `slow_cell` (the CLI has no runner option).
SWEEP = textwrap.dedent(
    """
    import sys
    import plw.experiment.driver as driver
    make, runner = driver.make_executor, sys.argv[1]
    driver.make_executor = lambda name, study, **kw: make(name, study, **{**kw, "runner": runner})
    from plw.cli.main import main
    sys.argv = ["plw", "sweep", *sys.argv[2:]]
    main()
    """
)


def start_sweep(args: list, log: Path, runner: str = "fault_support:slow_cell", env=None) -> subprocess.Popen:
    """A real `plw sweep` process (its own process group, like a batch job), output to `log`; no Ray
    setting of this environment reaches it, only those in `env`."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    environ.update(env or {})
    environ["PYTHONPATH"] = pythonpath(HERE, env=environ)
    with log.open("wb") as output:
        return subprocess.Popen([sys.executable, "-c", SWEEP, runner, *map(str, args)], cwd=REPO, env=environ,
                                stdout=output, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


def wait_until(condition, what: str, timeout: float = 300, process: subprocess.Popen | None = None, log=None):
    """Poll `condition()` until it is true (returned), failing on timeout or an early exit."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError(f"exited {process.returncode} before {what}: {_tail(log)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {_tail(log)}")
        time.sleep(0.1)


def one_done_one_training(cells: Path, steps: int):
    """A condition for `wait_until`: (a finished cell, an unfinished one with `steps` or more
    optimizer steps done) among the study's `cells` folder, once there are both."""

    def condition():
        dirs = sorted(cells.iterdir()) if cells.is_dir() else []
        done = [d for d in dirs if (d / RESULT).exists()]
        busy = [d for d in dirs if d not in done and len(steps_done(d)) >= steps]
        return (done[0], busy[0]) if done and busy else None

    return condition


def _tail(log: Path | None) -> str:
    return log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""


def tables(study_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The results and the runs table without timings, host and git revision (others commit to this
    checkout while tests run): what must equal a reference run."""
    store = ResultStore(study_dir / "results.sqlite")
    return store.results(), store.runs().drop(columns=[*TIMING_COLUMNS, "host", "git_revision"])


def assert_same_results(study_dir: Path, reference: Path) -> None:
    results, runs = tables(study_dir)
    expected_results, expected_runs = tables(reference)
    pd.testing.assert_frame_equal(results, expected_results, check_exact=False, rtol=1e-6)
    pd.testing.assert_frame_equal(runs, expected_runs)


def hang_on_plw_1(spec, cell_dir: Path):
    """A fake cell (nothing trained): PLW 0 finishes at once, PLW 1 runs until its process is killed."""
    if spec.factors["plw"] == 1.0:
        time.sleep(600)
    return {"rows": [{"task": "arc_easy", "metric": "acc", "value": 0.5 + 0.1 * spec.factors["plw"]}]}


def preemptible(spec, cell_dir: Path):
    """A fake cell that "trains" 0.2 s steps for a minute, stopping when asked as training does."""
    from plw import preemption

    for step in range(1, 301):
        (cell_dir / STEPS_FILE).open("a").write(f"{step}\n")
        time.sleep(0.2)
        if preemption.requested():
            raise preemption.Preempted(f"preempted by {preemption.requested()} at step {step}")
    return {"rows": []}
