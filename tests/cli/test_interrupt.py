"""Ctrl-C during `plw sweep`, `plw train` or `plw eval`: the resume message and exit code 130.

Typer turns a KeyboardInterrupt inside a command into a silent exit 130, so the message of
`plw.cli.main` never printed. `plw train` and `plw eval` run in a subprocess that gets a real SIGINT;
`plw sweep` runs in this process (its study validation imports transformers, seconds per process)
through the real driver and executor, with a cell that waits for the signal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support import write_study

HERE = Path(__file__).resolve().parent
MESSAGE = "interrupted: finished work is kept; rerun the same command to resume"


def interrupt(args: list, cwd: Path) -> tuple[int, str]:
    """Start `plw ARGS` with its work stubbed, send SIGINT once it is working; (exit code, stderr)."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "interrupt_support.py"), *map(str, args)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=cwd,
    )  # fmt: skip
    try:
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if line.strip() == "READY":
                break
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        proc.wait(timeout=30)
    finally:
        proc.kill()
    return proc.returncode, "".join(lines) + rest


@pytest.mark.parametrize(
    "args",
    [
        ["train", "train.yaml"],
        ["eval", "--model", "example-org/m", "--tasks", "arc_easy", "-o", "eval-out"],
    ],
    ids=["train", "eval"],
)
def test_ctrl_c_prints_the_resume_message_and_exits_130(tmp_path, args):
    code, err = interrupt(args, tmp_path)
    assert code == 130, err
    assert err.strip().splitlines()[-1] == MESSAGE and "Traceback" not in err, err


@pytest.fixture
def default_sigint():
    """Python's Ctrl-C handler for the test: a runner started in the background of a
    non-interactive shell (CI, nohup) inherits SIGINT ignored, which would make the test vacuous."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_during_a_sweep_cell(plw_cli, tmp_path, in_process, default_sigint):
    working = threading.Event()

    def cell(spec, cell_dir):
        working.set()
        time.sleep(5)  # the SIGINT comes within milliseconds; the sweep reports it once the cell returns
        raise AssertionError("no SIGINT arrived")

    def press_ctrl_c():
        if working.wait(timeout=30):
            os.kill(os.getpid(), signal.SIGINT)

    in_process(cell)
    threading.Thread(target=press_ctrl_c, daemon=True).start()
    code, _, err = plw_cli("sweep", write_study(tmp_path))
    assert code == 130 and err.strip().splitlines()[-1] == MESSAGE and "Traceback" not in err, err
    # The cell is left running, so the next sweep sees it as interrupted and reruns it.
    [status] = (tmp_path / "study" / "cells").glob("*/status.json")
    assert json.loads(status.read_text())["state"] == "running"
