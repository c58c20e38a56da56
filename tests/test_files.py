"""plw.files: atomic writes that leave nothing behind, and output paths checked before any work."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import pytest

import plw.files
from plw.errors import PLWError
from plw.files import (
    atomic_dir,
    check_output_path,
    write_atomic,
    write_bytes_atomic,
    write_text_atomic,
)


def leftovers(root: Path) -> list[Path]:
    """Temporary or probe files anywhere under `root`."""
    return [p for p in root.rglob("*") if ".tmp" in p.name or ".plw-probe" in p.name]


def test_text_bytes_and_callback_writes_replace_the_file(tmp_path):
    path = tmp_path / "sub" / "a.txt"
    assert write_text_atomic(path, "one\n") == path  # parents are created
    write_text_atomic(path, "twö\n")
    assert path.read_text(encoding="utf-8") == "twö\n"
    write_bytes_atomic(tmp_path / "b.bin", b"\0\1")
    assert (tmp_path / "b.bin").read_bytes() == b"\0\1"
    seen = []
    write_atomic(tmp_path / "c.npz", lambda tmp: (seen.append(tmp), tmp.write_text("x")))
    assert seen[0].parent == tmp_path and seen[0].suffix == ".npz"  # writers that go by the suffix
    assert (tmp_path / "c.npz").read_text() == "x" and not leftovers(tmp_path)


def test_the_file_and_its_directory_are_fsynced(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    write_text_atomic(tmp_path / "a.txt", "x")
    assert len(synced) == 2  # the file, then the directory holding the rename
    synced.clear()
    write_text_atomic(tmp_path / "a.txt", "y", fsync=False)
    assert synced == []


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path, error):
    path = tmp_path / "table.csv"
    path.write_text("old")

    def half_then_fail(tmp: Path) -> None:
        tmp.write_text("half a tab")
        raise error

    with pytest.raises(PLWError if isinstance(error, OSError) else KeyboardInterrupt) as caught:
        write_atomic(path, half_then_fail)
    if isinstance(error, OSError):
        assert str(caught.value) == f"{path}: cannot write: No space left on device"
    assert path.read_text() == "old" and not leftovers(tmp_path)


def test_writing_over_a_directory_is_one_line_and_no_temporary_file(tmp_path):
    (tmp_path / "out.json").mkdir()
    with pytest.raises(PLWError, match=r"out\.json: cannot write: Is a directory"):
        write_text_atomic(tmp_path / "out.json", "{}")
    assert not leftovers(tmp_path)


def test_atomic_dir_renames_on_success_and_removes_on_failure(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "half.bin").write_bytes(b"x")
        raise RuntimeError("conversion failed")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_dir(target) as tmp:
        (tmp / "config.json").write_text("{}")
    assert (target / "config.json").is_file() and list(tmp_path.iterdir()) == [target]


def test_atomic_dir_keeps_what_another_process_finished_first(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "config.json").write_text("ours")
        target.mkdir()
        (target / "config.json").write_text("theirs")
    assert (target / "config.json").read_text() == "theirs" and list(tmp_path.iterdir()) == [target]


def test_good_output_paths_pass_and_create_nothing(tmp_path):
    (tmp_path / "old.csv").write_text("x")
    assert check_output_path(tmp_path / "old.csv") == tmp_path / "old.csv"
    check_output_path(tmp_path / "new" / "deeper" / "t.csv")
    check_output_path(tmp_path / "new" / "dir", kind="dir")
    check_output_path(tmp_path, kind="dir")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.csv"]


@pytest.mark.parametrize(
    ("make", "target", "kind", "expected"),
    [
        ("dir", "out", "file", "-o: {path} is a directory; give a file path"),
        ("file", "out", "dir", "-o: {path} is a file; give a directory"),
        ("file", "out/x/t.csv", "file", "-o: {path} cannot be created: {made} is a file, not a directory"),
        ("file", "out/x", "dir", "-o: {path} cannot be created: {made} is a file, not a directory"),
    ],
)
def test_bad_output_paths_are_one_line_naming_the_path(tmp_path, make, target, kind, expected):
    made = tmp_path / "out"
    made.mkdir() if make == "dir" else made.write_text("x")
    path = tmp_path / target
    with pytest.raises(PLWError) as caught:
        check_output_path(path, kind=kind, what="-o")
    assert str(caught.value) == expected.format(path=path, made=made)
    assert not leftovers(tmp_path)


def test_read_only_locations_are_refused(tmp_path, monkeypatch):
    """Tests run as root, for whom os.access says yes to everything: the OS answer is patched here."""
    (tmp_path / "ro.csv").write_text("x")
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(PLWError, match=f"^--histogram: {tmp_path / 'ro.csv'} is read-only$"):
        check_output_path(tmp_path / "ro.csv", what="--histogram")
    with pytest.raises(PLWError, match=f"cannot be written: {tmp_path} is not writable$"):
        check_output_path(tmp_path / "new" / "t.csv", what="-o")


def test_the_probe_catches_what_os_access_misses(tmp_path, monkeypatch):
    """A read-only mount: os.access says writable, creating a file fails (simulated: EROFS)."""
    real_open = os.open

    def read_only_fs(path, flags, *args):
        if flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system")
        return real_open(path, flags, *args)

    monkeypatch.setattr(plw.files.os, "open", read_only_fs)
    with pytest.raises(PLWError) as caught:
        check_output_path(tmp_path / "study", kind="dir", what="study directory")
    assert str(caught.value) == (
        f"study directory: {tmp_path / 'study'} cannot be written: {tmp_path} is not writable "
        "(Read-only file system)"
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux sysfs")
def test_a_real_unwritable_directory_even_for_root():
    """sysfs refuses new files even to root, although os.access says it may write there."""
    if not os.path.isdir("/sys/kernel") or os.path.exists("/sys/kernel/plw.csv"):
        pytest.skip("no sysfs here")
    with pytest.raises(
        PLWError, match=r"^-o: /sys/kernel/plw\.csv cannot be written: /sys/kernel is not writable"
    ):
        check_output_path("/sys/kernel/plw.csv", what="-o")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write to read-only directories")
def test_a_read_only_directory_as_an_ordinary_user(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(PLWError, match="is not writable"):
            check_output_path(locked / "t.csv")
    finally:
        locked.chmod(0o755)
