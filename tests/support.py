"""Support shared by the whole test suite: where the shared data is, `plw` run in this process, record
and study files, and the processes a test starts. Fixtures built on it are in tests/conftest.py.

Import it as `support` (`from support import run_plw`): pytest puts tests/ on sys.path for
tests/conftest.py (its default "prepend" import mode; tests/ has no __init__.py), as it puts
tests/experiment there for sweep_support. A subprocess that imports it gets tests/ on its PYTHONPATH
through `pythonpath`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
SHARED = Path(os.environ.get("PLW_SHARED_DATA") or REPO.parent / "shared" / "data")
STORIES = SHARED / "models" / "stories260K"
ALPACA = SHARED / "instruct" / "alpaca_5000.json"
LLAMA = SHARED / "models" / "llama_tokenizer" / "tokenizer.model"  # LLaMA's SentencePiece model
TINY = REPO / "configs" / "studies" / "tiny.yaml"


# --- shared data and subprocess environments -----------------------------------------------------


def needs(*paths: Path) -> None:
    """Skip the test, naming what is missing, unless every path exists."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        pytest.skip(f"shared test data not found: {', '.join(missing)} (set PLW_SHARED_DATA)")


def shared(relative: str | Path) -> Path:
    """`SHARED / relative` ($PLW_SHARED_DATA, else shared/data beside the repository), or skip the
    test with the reason when it is absent."""
    path = SHARED / relative
    needs(path)
    return path


def pythonpath(*dirs: str | Path, env: Mapping[str, str] | None = None) -> str:
    """A PYTHONPATH for a subprocess: `dirs`, then tests/ (for this module), then `env`'s own
    PYTHONPATH (os.environ's by default)."""
    before = (os.environ if env is None else env).get("PYTHONPATH")
    return os.pathsep.join(filter(None, [*map(str, dirs), str(TESTS), before]))


# --- plw in this process -------------------------------------------------------------------------


def drop_closed_log_handlers() -> None:
    """Remove log handlers whose stream is closed. An earlier `plw` call here (the CLI's, Transformers')
    made them on that call's captured stderr, closed since: their logging errors would land in the
    next call's stderr."""
    for logger in [logging.root, *logging.Logger.manager.loggerDict.values()]:
        for handler in list(getattr(logger, "handlers", [])):
            if getattr(getattr(handler, "stream", None), "closed", False):
                logger.removeHandler(handler)


def run_plw(*argv) -> int:
    """`plw ARGV` through the real entry point `plw.cli.main.main`, in this process: its exit code
    (0 on success; errors exit 2). Output goes where sys.stdout/sys.stderr go (see the `plw_cli`
    fixture for captured output); sys.argv is restored afterwards."""
    from plw.cli.main import main

    drop_closed_log_handlers()
    old, sys.argv = sys.argv, ["plw", *map(str, argv)]
    try:
        with pytest.raises(SystemExit) as stop:
            main()
    finally:
        sys.argv = old
    return stop.value.code or 0


def assert_one_line_error(code: int, err: str, *needles) -> None:
    """Exit 2, one `error:` line containing every needle, no traceback."""
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ") and all(str(n) in err for n in needles), err


def leftovers(root: Path) -> list[Path]:
    """Temporary or probe files anywhere under `root`."""
    return [p for p in root.rglob("*") if ".tmp" in p.name or ".plw-probe" in p.name]


# --- record and study files ----------------------------------------------------------------------


def records(n: int) -> list[dict]:
    """`n` tiny Alpaca-style records: "Say i." -> "i"."""
    return [{"instruction": f"Say {i}.", "input": "", "output": f"{i}"} for i in range(n)]


RECORDS = records(4)


def write_json(path: Path, data) -> Path:
    """`data` as JSON at `path` (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    """`rows` as JSON lines at `path` (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_records(tmp_path: Path, rows: list[dict] = RECORDS) -> Path:
    """`rows` (by default RECORDS) as tmp_path/records.json, a JSON list as a dataset file."""
    return write_json(tmp_path / "records.json", rows)


def write_study(tmp_path: Path, output_dir: Path | None = None, dataset: str | None = None) -> Path:
    """tmp_path/study.yaml, a two-cell study (PLW 0 and 1) of one training step and no evaluation: a
    hub-id model (never loaded, so the cells must be faked) and a local data file (or `dataset`).
    Its study directory is `output_dir`, by default tmp_path/study."""
    data = dataset or str(write_records(tmp_path))
    path = tmp_path / "study.yaml"
    path.write_text(
        "name: fake\n"
        f"output_dir: {output_dir or tmp_path / 'study'}\n"
        "models: {tiny: example-org/tiny-model}\n"
        f"datasets: {{toy: {{path: {data}}}}}\n"
        "factors: {plw: [0.0, 1.0], model: [tiny], dataset: [toy]}\n"
        "train: {max_steps: 1}\n"
        "eval: {tasks: [], weight_distance: false, memorization_samples: 0}\n"
    )
    return path


def fake_cell(spec, cell_dir) -> dict:
    """A cell runner that trains nothing: one score that depends on the PLW."""
    plw = spec.factors["plw"]
    return {"rows": [{"task": "arc_easy", "metric": "acc", "value": 0.5 + 0.1 * plw, "stderr": 0.01}]}


# --- processes -----------------------------------------------------------------------------------


@contextlib.contextmanager
def reaped(process: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """Yield `process`; on the way out (a failure too) SIGKILL it if it still runs, and reap it."""
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def processes_mentioning(text: str) -> list:
    """The processes (psutil) whose command line contains `text`."""
    import psutil

    return [p for p in psutil.process_iter(["cmdline"]) if text in " ".join(p.info["cmdline"] or [])]


def stop_processes(procs: list, timeout: float = 5) -> None:
    """SIGTERM these processes (psutil) and their children by pid, SIGKILL what is left after
    `timeout` seconds, and reap it (`ray stop` would stop every Ray on the machine)."""
    import psutil

    everyone = {}
    for proc in procs:
        everyone[proc.pid] = proc
        with contextlib.suppress(psutil.Error):
            everyone.update({child.pid: child for child in proc.children(recursive=True)})
    for proc in everyone.values():
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, left = psutil.wait_procs(list(everyone.values()), timeout=timeout)
    for proc in left:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(left, timeout=5)
