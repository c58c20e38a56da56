"""Run one cell: `python -m plw.experiment.worker CELL_DIR [--runner MODULE:FUNCTION]`.

The worker marks the cell running, calls the cell runner (by default
`plw.experiment.runner.run_cell`: train, evaluate, measure), and writes result.json atomically,
last. Any exception becomes error.txt (message and traceback) and status failed, except two that no
rerun of the cell itself causes, which leave it interrupted (resumable, not failed):

- SIGTERM / SIGUSR1, or the driver's `stop` file (how a preempted driver reaches Ray workers on other
  nodes): training saves a checkpoint at its next step boundary; exit code 75 (`plw.preemption`).
- A full disk (`WriteError.disk_full`): exit code 74 when even the status could not be written.

Ctrl-C or the driver dying writes nothing, so the cell stays "running" with no result: the next
sweep sees it as interrupted and reruns it, resuming a checkpointed training.

This module imports nothing heavy, so the local executor's subprocess starts fast and a fake runner
(tests, benchmarks) costs no torch import.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import logging
import os
import platform
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from plw import preemption
from plw.errors import WriteError
from plw.experiment.celldir import (
    RESULT,
    STOP,
    CellSpec,
    mark_failed,
    mark_interrupted,
    read_status,
    write_json_atomic,
    write_status,
)

DEFAULT_RUNNER = "plw.experiment.runner:run_cell"
EXIT_CODES = {"done": 0, "failed": 1, "interrupted": preemption.EXIT_CODE, "disk_full": 74}  # else 3: lost
Runner = Callable[[CellSpec, Path], dict[str, Any]]
"""A cell runner: (spec, cell_dir) -> {"rows": [{task, metric, value, stderr}], "run": {...}}, and
optionally "layers": [{layer, metric, value}] (per-layer weight distances)."""


def resolve_runner(runner: str | Runner | None) -> Runner:
    """A runner from a callable or a 'module:function' string (None: the default runner)."""
    if callable(runner):
        return runner
    module, _, name = (runner or DEFAULT_RUNNER).partition(":")
    return getattr(importlib.import_module(module), name)


def run_facts() -> dict[str, Any]:
    """Versions, host and git revision, without importing torch or transformers."""
    from importlib.metadata import PackageNotFoundError, version

    facts: dict[str, Any] = {"python_version": platform.python_version(), "host": socket.gethostname()}
    for package in ("plw", "torch", "transformers"):
        try:
            facts[f"{package}_version"] = version(package)
        except PackageNotFoundError:
            facts[f"{package}_version"] = None
    facts["git_revision"] = git_revision(Path(__file__).resolve())
    return facts


def git_revision(start: Path) -> str | None:
    """The commit checked out in the repository holding `start`, read from .git (no git binary)."""
    for folder in start.parents:
        head_file = folder / ".git" / "HEAD"
        if not head_file.is_file():
            continue
        head = head_file.read_text().strip()
        if not head.startswith("ref: "):
            return head or None
        ref = head[5:]
        loose = folder / ".git" / ref
        if loose.is_file():
            return loose.read_text().strip()
        packed = folder / ".git" / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split()[0]
        return None
    return None


def _owns(cell_dir: Path, token: str) -> bool:
    """Whether this attempt still owns the cell (a newer driver may have reset it meanwhile)."""
    return read_status(cell_dir).get("token") == token


def execute_cell(cell_dir: Path, runner: str | Runner | None = None) -> str:
    """Run the cell in `cell_dir` in this process; return its state.

    "done", "failed", "interrupted" (preempted, or the disk is full: status.json says which), or
    "disk_full" (the disk is full and not even the status could be recorded); "lost" means another
    attempt took over the directory, and nothing was written.
    """
    cell_dir = Path(cell_dir)
    spec = CellSpec.load(cell_dir)
    os.environ.update(spec.env)
    started = time.time()
    write_status(cell_dir, "running", pid=os.getpid(), host=socket.gethostname(), token=spec.token,
                 started=started, stage="start")  # fmt: skip
    timeout = functools.partial(_interrupted_by, cell_dir, spec.token)
    try:
        with preemption.handling(on_timeout=timeout), _stop_file_watch(cell_dir):
            preemption.check()  # asked to stop before it started
            result = resolve_runner(runner)(spec, cell_dir)
    except preemption.Preempted as stop:
        return _interrupted_by(cell_dir, spec.token, str(stop))
    except WriteError as err:
        return _disk_full(cell_dir, spec.token, err) if err.disk_full else _failed(cell_dir, spec.token, err)
    except Exception as err:  # any failure of a cell is recorded, never raised to the driver
        return _failed(cell_dir, spec.token, err)
    finished = time.time()
    run = {**run_facts(), **result.get("run", {}), "started": started, "finished": finished,
           "wall_time_s": finished - started}  # fmt: skip
    if read_status(cell_dir).get("retries"):
        run["retries"] = read_status(cell_dir)["retries"]  # the attempts whose worker died
    if run.get("train_tokens") and run.get("train_time_s"):
        run["tokens_per_second"] = run["train_tokens"] / run["train_time_s"]
    payload = {"cell": spec.id, "fingerprint": spec.fingerprint, "factors": spec.factors,
               "rows": result["rows"], "layers": result.get("layers", []), "run": run}  # fmt: skip
    if not _owns(cell_dir, spec.token):
        return "lost"
    try:
        write_json_atomic(cell_dir / RESULT, payload)
    except WriteError as err:
        return _disk_full(cell_dir, spec.token, err) if err.disk_full else _failed(cell_dir, spec.token, err)
    write_status(cell_dir, "done", finished=finished)
    return "done"


def _failed(cell_dir: Path, token: str, err: Exception) -> str:
    if not _owns(cell_dir, token):
        return "lost"
    mark_failed(cell_dir, f"{type(err).__name__}: {err}", traceback.format_exc())
    return "failed"


def _interrupted_by(cell_dir: Path, token: str, reason: str, *, disk_full: bool = False) -> str:
    """Leave the cell resumable (preempted, or the disk is full); the watchdog calls this too."""
    if not _owns(cell_dir, token):
        return "lost"
    mark_interrupted(cell_dir, reason, disk_full=disk_full)
    return "interrupted"


def _disk_full(cell_dir: Path, token: str, err: WriteError) -> str:
    """The disk filled up: the cell stays resumable, and the driver stops the sweep on it."""
    try:
        return _interrupted_by(cell_dir, token, str(err), disk_full=True)
    except WriteError:  # still full: only the return value (or exit code) can say it
        return "disk_full"


@contextlib.contextmanager
def _stop_file_watch(cell_dir: Path, interval: float = 1.0) -> Iterator[None]:
    """Turn the driver's `stop` file into a stop request, polled once a second.

    A preempted driver writes it for every running cell: a signal cannot reach a Ray worker on
    another node, the study directory on a shared filesystem can.
    """
    done = threading.Event()

    def watch() -> None:
        while not done.wait(interval):
            if (cell_dir / STOP).exists():
                preemption.request()
                return

    if (cell_dir / STOP).exists():
        preemption.request()
    thread = threading.Thread(target=watch, daemon=True, name="plw-stop-watch")
    thread.start()
    try:
        yield
    finally:
        done.set()


def _die_with_driver() -> None:
    """Ask Linux to SIGKILL this process when the driver dies; exit now if it already has."""
    expected = os.environ.get("PLW_SWEEP_DRIVER_PID")
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    # The driver may have died between spawning us and the prctl call above.
    if expected and str(os.getppid()) != expected:
        os._exit(137)


def _watch_parent(interval: float = 1.0) -> None:
    """Exit when the driver dies (portable backup for PR_SET_PDEATHSIG, which only Linux has)."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os._exit(137)  # leave the cell "running": the next sweep reruns it from scratch

    threading.Thread(target=watch, daemon=True, name="plw-parent-watch").start()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the worker subprocess; exit code 0 done, 1 failed, 3 lost, 75 interrupted
    (preempted, or the disk is full: see status.json), 74 disk full with no status written."""
    parser = argparse.ArgumentParser(prog="python -m plw.experiment.worker")
    parser.add_argument("cell_dir", type=Path)
    parser.add_argument("--runner", default=None, help="cell runner as MODULE:FUNCTION")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _die_with_driver()
    _watch_parent()
    state = execute_cell(args.cell_dir, args.runner)
    return EXIT_CODES.get(state, 3)


if __name__ == "__main__":
    sys.exit(main())
