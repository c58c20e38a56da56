"""One sweep per study: an exclusive lock on STUDY_DIR/.lock that records its owner (host and pid).

A second `plw sweep` on a study refuses, in one line naming the running one; it never shares the
work. The lock is `flock`, which the OS releases when its process dies, however it dies, so the
next sweep takes the study over as soon as the owner is gone (and says whose it was). On NFS v4 (a
study directory shared by a cluster's nodes) Linux turns `flock` into a lock the server arbitrates
between hosts. Where the filesystem has no locks at all (`flock` fails with ENOLCK or EOPNOTSUPP),
the owner record alone decides: an owner on this host whose process is alive refuses, one whose
process is gone is taken over, and an owner on another host refuses, since its process cannot be
checked from here (remove the .lock file once you know that sweep has stopped).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from plw.errors import PLWError

try:  # POSIX only; elsewhere the owner record alone decides
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

LOCK = ".lock"
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)
log = logging.getLogger("plw.experiment")


def owner_record() -> dict[str, Any]:
    """Who holds the lock: this host, process and the time it took it."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}


def read_owner(path: Path) -> dict[str, Any] | None:
    """The recorded owner of a lock file (a bare pid from older plw versions too), or None."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if text.isdigit():
        return {"pid": int(text)}
    try:
        owner = json.loads(text)
    except ValueError:
        return None
    return owner if isinstance(owner, dict) else None


def describe(owner: dict[str, Any] | None) -> str:
    """'pid 4242 on node7 since 2026-11-23 10:04:05' (what is known of it)."""
    if not owner:
        return "owner unknown"
    text = f"pid {owner.get('pid', '?')}"
    if owner.get("host"):
        text += f" on {owner['host']}"
    if isinstance(owner.get("since"), int | float):
        text += f" since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(owner['since']))}"
    return text


def gone(owner: dict[str, Any] | None) -> bool:
    """Whether the owner's process has certainly exited (only checkable on this host)."""
    if not owner:
        return True
    if owner.get("host") not in (None, socket.gethostname()):
        return False
    try:
        os.kill(int(owner["pid"]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, KeyError, TypeError, ValueError):
        return False
    return False


def _refuse(study_dir: Path, owner: dict[str, Any] | None) -> PLWError:
    return PLWError(
        f"{study_dir}: another plw sweep is running this study ({describe(owner)}); "
        "wait for it to finish or stop it"
    )


def _acquire(handle, study_dir: Path) -> None:
    """Take the lock or raise the refusal; log a takeover from an owner that is gone."""
    path = study_dir / LOCK
    previous = read_owner(path)
    try:
        if fcntl is None:
            raise OSError(errno.ENOSYS, "no flock")
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _refuse(study_dir, previous) from None
    except OSError as err:
        if err.errno not in _NO_LOCKS:
            raise PLWError(f"{path}: cannot lock the study: {err.strerror or err}") from err
        if previous and not gone(previous):  # no locks here: the record has to decide
            raise _refuse(study_dir, previous) from None
    if previous:
        log.warning("%s: taking over the study from a sweep that is gone (%s)", study_dir, describe(previous))


@contextlib.contextmanager
def study_lock(study_dir: Path) -> Iterator[None]:
    """Hold the study directory exclusively for the block; the owner record is cleared after."""
    study_dir.mkdir(parents=True, exist_ok=True)
    with (study_dir / LOCK).open("a+", encoding="utf-8") as handle:
        _acquire(handle, study_dir)
        _write(handle, json.dumps(owner_record()))
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                _write(handle, "")


def _write(handle, text: str) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(text)
    handle.flush()


def lock_held(study_dir: Path) -> bool:
    """Whether a live sweep holds the study (for `plw status`: running vs interrupted)."""
    path = study_dir / LOCK
    if not path.exists():
        return False
    with path.open("a+") as handle:
        try:
            if fcntl is None:
                raise OSError(errno.ENOSYS, "no flock")
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            owner = read_owner(path)
            return bool(owner) and not gone(owner)
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
