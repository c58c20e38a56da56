"""plw.preemption: signals become stop requests inside `handling()`, and the grace period bounds the exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from support import reaped

from plw import preemption
from plw.errors import PLWError

WAITER = textwrap.dedent(
    """
    import sys, time
    from plw import preemption

    def hook(why):
        open(sys.argv[1], "w").write(why)

    with preemption.handling(on_timeout=hook):
        print("READY", flush=True)
        time.sleep(60)  # a step that never ends: only the watchdog can end the run
    """
)


def test_the_grace_period_bounds_the_exit(tmp_path):
    """No step boundary comes: the watchdog exits 75 once the grace period is over, after its hook."""
    note = tmp_path / "why.txt"
    env = {**os.environ, preemption.GRACE_ENV: "1.5"}
    process = subprocess.Popen([sys.executable, "-c", WAITER, str(note)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    with reaped(process):
        assert process.stdout.readline().strip() == "READY"
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
        took = time.monotonic() - sent
    print(f"exited {code} {took:.2f} s after SIGTERM with a 1.5 s grace period")
    assert code == preemption.EXIT_CODE and 1.5 <= took < 5
    assert note.read_text() == "preempted by SIGTERM: no step boundary within the 1.5 s grace period"


def test_handlers_are_scoped_and_nested_blocks_share_one_request():
    before = signal.getsignal(signal.SIGTERM)
    with preemption.handling(watchdog=False):
        assert signal.getsignal(signal.SIGUSR1) is not signal.SIG_DFL
        with preemption.handling(watchdog=False):
            preemption.check()  # nothing requested yet
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(0.05)  # the handler runs between bytecodes
            assert preemption.requested() == "SIGUSR1"
            assert preemption.requested_signal() == signal.SIGUSR1
            preemption.request(signal.SIGTERM)  # a second signal changes nothing
        assert preemption.requested() == "SIGUSR1"  # the inner block keeps the outer's request
        with pytest.raises(preemption.Preempted, match="preempted by SIGUSR1"):
            preemption.check()
    assert signal.getsignal(signal.SIGTERM) == before and preemption.requested() is None


@pytest.mark.parametrize("value", ["0", "-3", "soon", "nan", "inf"])
def test_a_bad_grace_period_is_one_line(monkeypatch, value):
    monkeypatch.setenv(preemption.GRACE_ENV, value)
    with pytest.raises(PLWError, match=f"^PLW_GRACE_S={value}: the grace period must be a positive number"):
        preemption.grace_seconds()


def test_grace_option_is_checked(plw_cli):
    code, _, err = plw_cli("train", "missing.yaml", "--grace", "0")
    assert code == 2 and err.strip() == (
        "error: --grace 0: the grace period must be a positive number of seconds"
    )


LAUNCHED = textwrap.dedent(
    """
    import signal, sys, time
    signal.signal(signal.SIGTERM, lambda *_: (open(sys.argv[1], "w").write("got it"), sys.exit(75)))
    time.sleep(60)
    """
)


def test_a_preempted_cell_passes_the_signal_to_its_launched_training(tmp_path):
    """`resources.launcher` (torchrun ...) trains in a child of the worker: it gets the signal too."""
    import threading

    from plw.experiment.runner import launch_training

    note = tmp_path / "note"
    config = type("Config", (), {"output_dir": str(tmp_path / "train")})()
    stub = tmp_path / "launcher.py"
    stub.write_text(LAUNCHED)
    with preemption.handling(watchdog=False):
        threading.Timer(1.0, preemption.request).start()
        with pytest.raises(
            preemption.Preempted, match="preempted by SIGTERM: the launched training exited 75"
        ):
            launch_training([sys.executable, str(stub), str(note)], tmp_path, config)
    assert note.read_text() == "got it"
