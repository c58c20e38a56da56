"""Run one cell: `python -m plw.experiment.worker CELL_DIR [--runner MODULE:FUNCTION]`.

The worker marks the cell running, calls the cell runner (by default
`plw.experiment.runner.run_cell`: train, evaluate, measure), and writes result.json atomically,
last. Any exception becomes error.txt (message and traceback) and status failed. An interrupt
(Ctrl-C, SIGTERM, the driver dying) writes nothing, so the cell stays "running" with no result:
the next sweep sees it as interrupted and reruns it from scratch.

This module imports nothing heavy, so the local executor's subprocess starts fast and a fake runner
(tests, benchmarks) costs no torch import.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import platform
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plw.experiment.celldir import RESULT, CellSpec, mark_failed, read_status, write_json_atomic, write_status

DEFAULT_RUNNER = "plw.experiment.runner:run_cell"
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
    """Run the cell in `cell_dir` in this process; return "done", "failed" or "lost".

    "lost" means another attempt took over the directory; nothing was written.
    """
    cell_dir = Path(cell_dir)
    spec = CellSpec.load(cell_dir)
    os.environ.update(spec.env)
    started = time.time()
    write_status(cell_dir, "running", pid=os.getpid(), host=socket.gethostname(), token=spec.token,
                 started=started, stage="start")  # fmt: skip
    try:
        result = resolve_runner(runner)(spec, cell_dir)
    except Exception as err:  # any failure of a cell is recorded, never raised to the driver
        if not _owns(cell_dir, spec.token):
            return "lost"
        mark_failed(cell_dir, f"{type(err).__name__}: {err}", traceback.format_exc())
        return "failed"
    finished = time.time()
    run = {**run_facts(), **result.get("run", {}), "started": started, "finished": finished,
           "wall_time_s": finished - started}  # fmt: skip
    if run.get("train_tokens") and run.get("train_time_s"):
        run["tokens_per_second"] = run["train_tokens"] / run["train_time_s"]
    payload = {"cell": spec.id, "fingerprint": spec.fingerprint, "factors": spec.factors,
               "rows": result["rows"], "layers": result.get("layers", []), "run": run}  # fmt: skip
    if not _owns(cell_dir, spec.token):
        return "lost"
    write_json_atomic(cell_dir / RESULT, payload)
    write_status(cell_dir, "done", finished=finished)
    return "done"


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
    """Entry point of the worker subprocess; exit code 0 done, 1 failed, 3 lost."""
    parser = argparse.ArgumentParser(prog="python -m plw.experiment.worker")
    parser.add_argument("cell_dir", type=Path)
    parser.add_argument("--runner", default=None, help="cell runner as MODULE:FUNCTION")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _die_with_driver()
    _watch_parent()
    state = execute_cell(args.cell_dir, args.runner)
    return {"done": 0, "failed": 1}.get(state, 3)


if __name__ == "__main__":
    sys.exit(main())
