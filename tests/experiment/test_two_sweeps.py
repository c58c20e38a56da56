"""Two sweeps on one study: the second refuses in one line naming the running one (host, pid); once
that process is gone, the next sweep takes the study over and runs only what was not finished."""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import socket
import subprocess
import sys

import pytest
from fault_support import start_sweep, wait_until
from support import reaped, write_study

import plw.experiment.lock as lock
from plw.errors import PLWError
from plw.experiment.celldir import RESULT, read_json, read_status
from plw.experiment.lock import LOCK, lock_held, study_lock

HOST = socket.gethostname()


def test_a_second_sweep_refuses_then_takes_over_once_the_first_is_gone(tmp_path, plw_cli, in_process, caplog):
    study, study_dir = write_study(tmp_path), tmp_path / "study"
    log = tmp_path / "first.log"
    cells = study_dir / "cells"
    done, busy = (
        cells / "plw=0__model=tiny__dataset=toy__seed=0__reg=none",
        cells / "plw=1__model=tiny__dataset=toy__seed=0__reg=none",
    )
    with reaped(start_sweep([study], log, runner="fault_support:hang_on_plw_1")) as first:
        wait_until(lambda: read_status(busy).get("state") == "running", "the first sweep's second cell",
                   process=first, log=log)  # fmt: skip
        assert lock_held(study_dir)
        code, _, err = plw_cli("sweep", study)
        assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        owner = lock.read_owner(study_dir / LOCK)
        assert owner["pid"] == first.pid and owner["host"] == HOST
        running = f"another plw sweep is running this study ({lock.describe(owner)})"
        assert err.strip() == f"error: {study_dir.resolve()}: {running}; wait for it to finish or stop it"
        assert f"pid {first.pid} on {HOST} since " in err
        started = read_json(done / RESULT)["run"]["started"]
        os.kill(first.pid, signal.SIGKILL)  # the first sweep dies without cleaning up
        first.wait(timeout=30)

    ran = []
    in_process(lambda spec, cell_dir: ran.append(spec.id) or {"rows": []})
    with caplog.at_level(logging.WARNING, logger="plw.experiment"):
        code, _, err = plw_cli("sweep", study)
    assert code == 0, err
    assert ran == [busy.name]  # the finished cell is not run again; the interrupted one is
    assert read_json(done / RESULT)["run"]["started"] == started
    [takeover] = [r.getMessage() for r in caplog.records if "taking over" in r.getMessage()]
    assert f"(pid {first.pid} on {HOST} since " in takeover
    assert not lock_held(study_dir) and lock.read_owner(study_dir / LOCK) is None  # released, cleared


@pytest.fixture
def no_flock(monkeypatch):
    """A filesystem without locks (flock fails with ENOLCK): the owner record alone decides."""

    def flock(handle, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(lock.fcntl, "flock", flock)


def test_without_file_locks_the_owner_record_decides(tmp_path, no_flock, caplog):
    study_dir = tmp_path / "study"
    study_dir.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (study_dir / LOCK).write_text(json.dumps({"host": HOST, "pid": sleeper.pid, "since": 0}))
        with (
            pytest.raises(
                PLWError, match=f"another plw sweep is running this study \\(pid {sleeper.pid} on "
            ),
            study_lock(study_dir),
        ):
            pass
        assert lock_held(study_dir)
    finally:
        sleeper.kill()
        sleeper.wait()
    with caplog.at_level(logging.WARNING, logger="plw.experiment"), study_lock(study_dir):
        assert lock.read_owner(study_dir / LOCK)["pid"] == os.getpid()  # taken over: its owner is gone
    assert any(f"pid {sleeper.pid} on {HOST}" in r.getMessage() for r in caplog.records)

    (study_dir / LOCK).write_text(json.dumps({"host": "node7", "pid": 1}))  # cannot be checked from here
    refused = "another plw sweep is running this study \\(pid 1 on node7\\)"
    with pytest.raises(PLWError, match=refused), study_lock(study_dir):
        pass
