"""Memory and time of a training step: the resident set on CPU, the caching allocator on CUDA.

Shared by bench/loss.py (CPU, one child process per measurement) and bench/gpu.py. On CPU "peak"
is the process's resident-set high-water mark (VmHWM, reset through /proc/self/clear_refs after
freed heap memory is handed back with malloc_trim); on CUDA it is `torch.cuda.max_memory_allocated`,
the tensors' high-water mark, which excludes the allocator's cached but unused blocks.
"""

from __future__ import annotations

import contextlib
import ctypes
import time
from pathlib import Path

import torch


def rss_mib(field: str) -> float:
    """A memory field of /proc/self/status ("VmRSS", "VmHWM") in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def trim_heap() -> None:
    """Return freed heap memory to the OS (glibc), so the resident set counts live memory only."""
    # Not glibc: RSS then also holds memory the allocator keeps for reuse.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so later peaks belong to what follows."""
    Path("/proc/self/clear_refs").write_text("5")


class Meter:
    """Current and peak memory (MiB) and synchronised wall time on one device."""

    def __init__(self, device: torch.device):
        self.device = device

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def now_mib(self) -> float:
        """Memory in use now, after releasing what is free (the baseline of a step)."""
        self.sync()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            return torch.cuda.memory_allocated(self.device) / 2**20
        trim_heap()
        return rss_mib("VmRSS")

    def reset_peak(self) -> None:
        self.sync()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            trim_heap()
            reset_peak_rss()

    def peak_mib(self) -> float:
        self.sync()
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        return rss_mib("VmHWM")

    def timed(self, fn):
        """(fn's result, wall seconds), with the device synchronised on both sides."""
        self.sync()
        start = time.perf_counter()
        out = fn()
        self.sync()
        return out, time.perf_counter() - start
