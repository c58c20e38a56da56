"""Wall time and peak memory of the quickstart (`plw demo`) against its budget.

Runs `plw demo` in a fresh study directory as a child process, samples the resident memory of the
whole process tree (driver + cell workers) every 0.2 s, and prints both next to the quickstart's
budget: 10 minutes and 4 GiB on 2 CPU cores. By default plw's cache is a fresh empty folder too, as
on a newcomer's first run (the GGUF conversion, the synthetic suite, tokenisation and the base
model's retention samples all happen); `--warm-cache` reuses ~/.cache/plw. Exits non-zero only if
the demo crashes.

    .venv/bin/python bench/demo.py                       # the default study (SmolLM2-135M-Instruct)
    .venv/bin/python bench/demo.py --model ../shared/data/models/stories260K
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

BUDGET_S, BUDGET_GIB = 10 * 60, 4.0


def tree_rss(proc: psutil.Process) -> int:
    """Resident bytes of a process and all its children."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def run(model: str | None, extra: list[str], warm_cache: bool) -> tuple[float, float, int]:
    """(wall seconds, peak GiB, exit code) of one `plw demo` in a fresh study directory."""
    out = Path(tempfile.mkdtemp(prefix="plw-demo-bench-"))
    env = dict(os.environ) if warm_cache else {**os.environ, "PLW_CACHE_DIR": str(out / "cache")}
    command = [sys.executable, "-m", "plw", "demo", f"output_dir={out / 'study'}", *extra]
    if model:
        command[4:4] = ["--model", model]
    start, peak = time.time(), 0
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    proc = psutil.Process(child.pid)
    while child.poll() is None:
        peak = max(peak, tree_rss(proc))
        time.sleep(0.2)
    return time.time() - start, peak / 2**30, child.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model for `plw demo --model` (default: the study's)")
    parser.add_argument("--warm-cache", action="store_true", help="reuse plw's cache (a second run)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the quickstart study")
    args = parser.parse_args()
    wall, peak, code = run(args.model, args.overrides, args.warm_cache)
    print(f"{'':12} {'measured':>10} {'budget':>10} {'ratio':>7}")
    print(f"{'wall time':12} {wall / 60:9.1f}m {BUDGET_S / 60:9.0f}m {wall / BUDGET_S:7.2f}")
    print(f"{'peak memory':12} {peak:8.2f}GiB {BUDGET_GIB:7.0f}GiB {peak / BUDGET_GIB:7.2f}")
    if code != 0:
        sys.exit(f"plw demo exited with code {code}")


if __name__ == "__main__":
    main()
