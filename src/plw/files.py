"""Writing outputs without losing work: atomic writes, and output paths checked before any work.

Every file plw writes goes through `write_atomic` (or `write_text_atomic` / `write_bytes_atomic`):
the content goes to a temporary file in the target's directory, is flushed and fsynced, and is
renamed over the target, so a reader (or a rerun after a crash) sees the old file or the new one,
never half of one, and a failed write leaves no temporary file behind.

Commands that write somewhere the user named call `check_output_path` first, so a directory given
where a file is meant, a path under a file or a read-only location is one line before hours of work.

Writers plw does not own (Trainer's checkpoints, `save_pretrained`) run inside `saving(path)`, which
turns a full disk into the same one-line `WriteError` and removes what was half written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from plw.errors import PLWError, WriteError

# A full disk, or a full quota: what no rerun fixes until someone frees space.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
# Below this much free space after a failed write, the write failed because the disk filled up:
# torch.save reports it as "unexpected pos" without an errno, having written until nothing was left.
NEARLY_FULL = 1 << 20


def temp_path(path: Path) -> Path:
    """A fresh name beside `path` that keeps its suffix (savefig and np.savez go by the suffix)."""
    return path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")


def write_atomic(path: str | Path, write: Callable[[Path], object], *, fsync: bool = True,
                 mkdir: bool = True) -> Path:  # fmt: skip
    """Call `write(tmp)` on a temporary path beside `path`, then rename the result onto `path`.

    For writers that need a path (pandas `to_parquet`, `np.savez`, `Figure.savefig`).

    Args:
        path: the file to create or replace.
        write: writes the whole content to the path it is given.
        fsync: flush the file (and the rename) to disk, so a power cut keeps the new content.
        mkdir: create the parent directories first.

    Raises:
        PLWError: the file cannot be written (disk full, read-only, a directory in the way), naming
            it; the temporary file is removed. Other errors of `write` propagate unchanged.
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        if mkdir:
            path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        if fsync:
            _fsync(tmp, os.O_RDONLY)
        os.replace(tmp, path)
    except BaseException as err:  # Ctrl-C included: never leave the temporary file behind
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(err, OSError):
            raise WriteError(path, reason(err), disk_full=err.errno in DISK_FULL) from err
        raise
    if fsync:
        with contextlib.suppress(OSError):  # not every filesystem can fsync a directory
            _fsync(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    return path


def write_bytes_atomic(path: str | Path, data: bytes, **options) -> Path:
    """Write bytes atomically (see `write_atomic` for the options)."""
    return write_atomic(path, lambda tmp: tmp.write_bytes(data), **options)


def write_text_atomic(path: str | Path, text: str, *, encoding: str = "utf-8", **options) -> Path:
    """Write text atomically (see `write_atomic` for the options)."""
    return write_bytes_atomic(path, text.encode(encoding), **options)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside `path`; rename it to `path` when the block succeeds.

    On an error the temporary directory is removed. When `path` appeared meanwhile (another process
    finished the same work first), theirs is kept and ours discarded.
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        tmp.mkdir(parents=True)
        yield tmp
        try:
            tmp.rename(path)
        except OSError:
            if not path.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_output_path(path: str | Path, *, kind: str = "file", what: str = "output") -> Path:
    """Check, before any work, that `path` can be written as a file or directory; return it.

    Args:
        path: where the command will write.
        kind: "file" or "dir".
        what: the option or field that named the path, for the message (e.g. "-o/--output").

    Raises:
        PLWError: one line naming `what` and `path`: a directory where a file is meant, a file
            where a directory is meant, a path under a file, or a location that is not writable.
    """
    if kind not in ("file", "dir"):
        raise ValueError(f"kind must be 'file' or 'dir', not {kind!r}")
    path = Path(path).expanduser()
    if kind == "file" and path.is_dir():
        raise PLWError(f"{what}: {path} is a directory; give a file path")
    if kind == "dir" and path.exists() and not path.is_dir():
        raise PLWError(f"{what}: {path} is a file; give a directory")
    existing = next(p for p in (path, *path.parents) if p.exists())
    if existing != path and not existing.is_dir():
        raise PLWError(f"{what}: {path} cannot be created: {existing} is a file, not a directory")
    if kind == "file" and existing == path and not os.access(path, os.W_OK):
        raise PLWError(f"{what}: {path} is read-only")
    # The directory that receives the new file (or the temporary file renamed over an old one).
    target = path if path.is_dir() else (path.parent if existing == path else existing)
    problem = writable_problem(target)
    if problem:
        raise PLWError(f"{what}: {path} cannot be written: {target} {problem}")
    return path


def writable_problem(directory: Path) -> str | None:
    """Why no file can be created in an existing `directory`, or None.

    `os.access` alone is not enough: for root it says yes to everything, and it knows nothing of
    read-only mounts or special filesystems, so a probe file is really created and removed.
    """
    if not os.access(directory, os.W_OK | os.X_OK):
        return "is not writable"
    probe = directory / f".plw-probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError as err:
        return f"is not writable ({reason(err)})"
    with contextlib.suppress(OSError):
        probe.unlink()
    return None


@contextlib.contextmanager
def saving(path: str | Path) -> Iterator[None]:
    """Run a save into the directory `path` (a checkpoint, a model) by a library plw does not own.

    An error that came from a full disk (an errno, Rust's "os error 28", or torch's errno-less
    failure on a disk left without space) becomes a one-line `WriteError` naming `path`, and the
    half-written `path` is removed: it could never be loaded, and it holds the space a rerun needs.
    Other errors propagate unchanged.
    """
    path = Path(path)
    try:
        yield
    except PLWError:
        raise
    except Exception as err:
        why = disk_full_reason(err, path)
        if why is None:
            if isinstance(err, OSError):
                raise WriteError(path, reason(err)) from err
            raise
        shutil.rmtree(path, ignore_errors=True)
        raise WriteError(path, f"{why} (removed the partial files)", disk_full=True) from err


def disk_full_reason(err: BaseException, where: Path) -> str | None:
    """The reason ("No space left on device", "Disk quota exceeded") when `err` means a full disk."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in DISK_FULL:
            return os.strerror(seen.errno)
        if "No space left on device" in str(seen) or "os error 28" in str(seen):
            return os.strerror(errno.ENOSPC)
        seen = seen.__cause__ or seen.__context__
    existing = next((p for p in (where, *where.parents) if p.exists()), None)
    try:
        free = shutil.disk_usage(existing).free if existing is not None else NEARLY_FULL
    except OSError:
        return None
    return os.strerror(errno.ENOSPC) if free < NEARLY_FULL else None


def reason(err: OSError) -> str:
    """An OSError in words, without repeating the file name."""
    return err.strerror or type(err).__name__


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
