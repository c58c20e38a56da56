"""The local executor: cells one after another, each in its own worker subprocess.

A subprocess per cell means a crash, a segfault or the kernel's OOM killer ends only that cell: the
driver records it as failed and moves on. The worker dies with the driver (PR_SET_PDEATHSIG on
Linux, a parent-watch thread elsewhere), so a killed driver leaves no orphan writing into a cell
that the next sweep is about to rerun.

A preempted driver (`plw.preemption`) passes its signal on to the running worker, which saves a
checkpoint at its next step boundary and exits; no further cell starts. A worker still alive after
the grace period plus `EXIT_MARGIN_S` is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from plw import preemption
from plw.experiment.celldir import LOG, cell_state, mark_failed, mark_interrupted
from plw.experiment.worker import EXIT_CODES, Runner, execute_cell

DRIVER_PID_ENV = "PLW_SWEEP_DRIVER_PID"
# What a cell's run can end as; anything else is read from its files.
OUTCOMES = ("done", "failed", "interrupted", "disk_full")
# Seconds a preempted driver waits beyond the grace period for its workers to exit: their watchdog
# fires at the grace period, and exiting takes a moment more.
EXIT_MARGIN_S = 5.0


class Events(Protocol):
    """What an executor reports to the driver."""

    def started(self, cell_dir: Path) -> None:
        """A cell was handed to a worker (for Ray: submitted; it may still be queued)."""

    def finished(self, cell_dir: Path, state: str) -> None:
        """A cell ended: "done", "failed", "interrupted" (preempted, or the disk is full) or
        "disk_full" (the worker could not even record it); its files say why."""

    def poll(self) -> None:
        """Called about every `poll_interval` seconds while cells run (progress refresh)."""


def log_tail(cell_dir: Path, lines: int = 20) -> str:
    """The last lines of a cell's worker.log."""
    try:
        text = (cell_dir / LOG).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def record_crash(cell_dir: Path, what: str) -> str:
    """Mark a cell failed when its worker died without recording an outcome; return its state."""
    state = cell_state(cell_dir)
    if state in ("done", "failed", "interrupted"):
        return state
    tail = log_tail(cell_dir)
    mark_failed(cell_dir, f"worker {what}", f"last lines of {LOG}:\n{tail}" if tail else "")
    return "failed"


def exit_reason(returncode: int) -> str:
    """Words for a worker's exit status."""
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else str(-returncode)
        hint = " (out of memory?)" if -returncode == signal.SIGKILL else ""
        return f"killed by signal {name}{hint}"
    return f"exited with code {returncode} without recording a result"


class LocalExecutor:
    """Run cells sequentially on this machine.

    Args:
        runner: cell runner as "module:function" (None: the default runner); with
            `isolate=False` also a callable.
        isolate: run each cell in a worker subprocess (default); False runs cells in this
            process (tests with fake runners, debugging).
        poll_interval: seconds between progress polls.
    """

    name = "local"

    def __init__(
        self, runner: str | Runner | None = None, *, isolate: bool = True, poll_interval: float = 0.5
    ):
        if isolate and runner is not None and not isinstance(runner, str):
            raise ValueError("a worker subprocess needs the runner as a 'module:function' string")
        self.runner, self.isolate, self.poll_interval = runner, isolate, poll_interval

    def run(self, cell_dirs: list[Path], events: Events) -> None:
        """Run each cell and report it; KeyboardInterrupt stops the running worker and propagates;
        after a preemption request no further cell starts."""
        for cell_dir in cell_dirs:
            if preemption.requested():
                break
            events.started(cell_dir)
            state = (
                self._subprocess(cell_dir, events.poll)
                if self.isolate
                else execute_cell(cell_dir, self.runner)
            )
            events.finished(cell_dir, state if state in OUTCOMES else cell_state(cell_dir))

    def _subprocess(self, cell_dir: Path, poll: Callable[[], None]) -> str:
        command = [sys.executable, "-m", "plw.experiment.worker", str(cell_dir)]
        if self.runner:
            command += ["--runner", str(self.runner)]
        env = {**os.environ, DRIVER_PID_ENV: str(os.getpid())}
        with (cell_dir / LOG).open("ab") as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        forwarded = None
        try:
            while True:
                try:
                    returncode = process.wait(timeout=self.poll_interval)
                    break
                except subprocess.TimeoutExpired:
                    poll()
                    forwarded = _forward_preemption(process, forwarded)
        except BaseException:
            _stop(process)
            raise
        state = cell_state(cell_dir)
        if state in ("done", "failed", "interrupted"):
            return state
        if returncode == EXIT_CODES["disk_full"]:
            return "disk_full"
        if forwarded is not None:  # preempted, and killed after the grace period: still resumable
            why = f"preempted by {preemption.requested()}: killed after the grace period"
            mark_interrupted(cell_dir, why)
            return "interrupted"
        return record_crash(cell_dir, exit_reason(returncode))


def _forward_preemption(process: subprocess.Popen, since: float | None) -> float | None:
    """Pass this driver's preemption signal on to the worker, once; kill the worker when it outlives
    the grace period (plus a margin). Returns when the signal was passed on (None: no request)."""
    signum = preemption.requested_signal()
    if signum is None:
        return None
    if since is None:
        process.send_signal(signum)
        return time.monotonic()
    if time.monotonic() - since > preemption.grace_seconds() + EXIT_MARGIN_S:
        process.kill()
    return since


def _stop(process: subprocess.Popen, grace: float = 10.0) -> None:
    """Terminate a worker, killing it if it does not exit within `grace` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
