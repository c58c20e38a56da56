"""Preemption: SIGTERM or SIGUSR1 asks a run to save a checkpoint and exit, within a grace period.

Clusters stop jobs with SIGTERM (Kubernetes, SLURM at the time limit or on `scancel`; SLURM sends
SIGUSR1 ahead of the limit with `--signal=USR1@SECONDS`) and SIGKILL a grace period later. While
`handling()` is active, either signal only records a request: training checks it at the next step
boundary, saves a checkpoint there and stops (`plw.training.callbacks.StopOnPreemption`), and the
command exits with `EXIT_CODE` (75, EX_TEMPFAIL of sysexits.h: "try again later"), which says that
the run stopped cleanly and a rerun resumes it. If no step boundary comes within the grace period
(`PLW_GRACE_S`, default 25 s: under the 30 s SLURM and Kubernetes give by default), a watchdog
exits with the same code anyway; the rerun then resumes from the last complete checkpoint.

Light on imports: the sweep driver and the worker subprocess use it before torch is loaded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from plw.errors import PLWError

EXIT_CODE = 75
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
GRACE_ENV = "PLW_GRACE_S"
DEFAULT_GRACE_S = 25.0
log = logging.getLogger("plw.preemption")


class Preempted(Exception):  # noqa: N818 (a stop on request, not an error)
    """A run stopped on a preemption signal after saving what it could; the CLI exits `EXIT_CODE`."""


@dataclass
class _State:
    """The request of this process (one per process: signals are process-wide)."""

    signum: int | None = None
    at: float = 0.0
    depth: int = 0
    watchdogs: int = 0
    timer: threading.Timer | None = None
    on_timeout: list[Callable[[str], None]] = field(default_factory=list)


_state = _State()
_lock = threading.RLock()


def grace_seconds() -> float:
    """The grace period from `PLW_GRACE_S` (seconds), else the default.

    Raises:
        PLWError: the variable is not a positive number.
    """
    text = os.environ.get(GRACE_ENV, "").strip()
    if not text:
        return DEFAULT_GRACE_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):  # NaN fails too
        raise PLWError(f"{GRACE_ENV}={text}: the grace period must be a positive number of seconds")
    return value


def set_grace(seconds: float | None) -> None:
    """Set the grace period of this process and of the workers it starts (None: leave it)."""
    if seconds is None:
        return
    if not 0 < seconds < float("inf"):
        raise PLWError(f"--grace {seconds:g}: the grace period must be a positive number of seconds")
    os.environ[GRACE_ENV] = repr(float(seconds))


def requested() -> str | None:
    """The name of the signal that asked this process to stop ("SIGTERM"), or None."""
    return None if _state.signum is None else signal.Signals(_state.signum).name


def requested_signal() -> int | None:
    """The number of that signal (what a driver forwards to its workers), or None."""
    return _state.signum


def request(signum: int = signal.SIGTERM) -> None:
    """Ask this process to stop at the next step boundary (what the signal handler does).

    The first request arms the watchdog when a `handling(watchdog=True)` block is active; later
    ones change nothing.
    """
    with _lock:
        if _state.signum is not None:
            return
        _state.signum, _state.at = signum, time.time()
        if _state.watchdogs:
            _arm(grace_seconds())
    log.warning("%s received: stopping at the next step boundary", requested())


def check() -> None:
    """Raise `Preempted` when a stop was requested (between a cell's stages)."""
    if _state.signum is not None:
        raise Preempted(f"preempted by {requested()}")


def _arm(grace: float) -> None:
    timer = threading.Timer(grace, _timeout, args=(grace,))
    timer.daemon = True
    _state.timer = timer
    timer.start()


def _timeout(grace: float) -> None:
    """The grace period is over: leave now, with the preemption exit code."""
    why = f"preempted by {requested()}: no step boundary within the {grace:g} s grace period"
    log.warning("%s; exiting without a new checkpoint (a rerun resumes from the last complete one)", why)
    for hook in list(_state.on_timeout):
        with contextlib.suppress(Exception):
            hook(why)
    os._exit(EXIT_CODE)


def _handler(signum, frame) -> None:
    request(signum)


@contextlib.contextmanager
def handling(*, watchdog: bool = True, on_timeout: Callable[[str], None] | None = None) -> Iterator[None]:
    """Turn SIGTERM and SIGUSR1 into stop requests for the block; restore the old handlers after.

    Blocks nest (the worker's around training's); the outermost one installs and restores the
    handlers and forgets the request on exit. Outside the main thread signals cannot be handled:
    the block then only scopes `on_timeout`.

    Args:
        watchdog: exit with `EXIT_CODE` when a request is older than the grace period (the sweep
            driver, which waits for its workers itself, passes False).
        on_timeout: called with a one-line reason just before the watchdog exits (a worker marks
            its cell resumable).
    """
    grace_seconds()  # a bad PLW_GRACE_S fails now, not in the signal handler
    main = threading.current_thread() is threading.main_thread()
    with _lock:
        saved = {s: signal.signal(s, _handler) for s in SIGNALS} if main and _state.depth == 0 else {}
        _state.depth += 1
        _state.watchdogs += watchdog
        if on_timeout is not None:
            _state.on_timeout.append(on_timeout)
        if watchdog and _state.signum is not None and _state.timer is None:
            _arm(max(grace_seconds() - (time.time() - _state.at), 0.0))
    try:
        yield
    finally:
        with _lock:
            _state.depth -= 1
            _state.watchdogs -= watchdog
            if on_timeout is not None:
                _state.on_timeout.remove(on_timeout)
            if _state.watchdogs == 0:
                _disarm()
            if _state.depth == 0:
                for signum, old in saved.items():
                    signal.signal(signum, old)
                _state.signum, _state.at = None, 0.0


def reclaim() -> None:
    """Install the handlers again inside an active `handling()` block, after a library replaced them
    (`ray.init` installs Ray's own SIGTERM handler in the driver, which would end it on the spot)."""
    if _state.depth and threading.current_thread() is threading.main_thread():
        for signum in SIGNALS:
            signal.signal(signum, _handler)


def _disarm() -> None:
    if _state.timer is not None:
        _state.timer.cancel()
    _state.timer = None
