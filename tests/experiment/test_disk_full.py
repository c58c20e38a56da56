"""A full disk: a checkpoint, a model save, per-item results or results.sqlite that cannot be written is
one line naming the path and exit 2; the last complete checkpoint and every finished cell stay, and
the rerun (space freed) ends equal to a run without the fault.

Real full disks where the machine allows it: a size-limited tmpfs (mounting needs root; skipped with
the reason otherwise). The rest inject the failure where the OS or SQLite reports it: a `torch.save`
or `Path.write_bytes` raising ENOSPC, an SQLite database capped by `max_page_count` (SQLITE_FULL, the
error SQLite gives for a full disk).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
import torch
import yaml
from fault_support import (
    STEP_SLEEP_ENV,
    assert_same_results,
    one_done_one_training,
    overrides,
    start_sweep,
    wait_until,
)
from support import TINY, reaped, write_study

from plw.experiment.celldir import LOG, RESULT, read_json, read_status
from plw.experiment.driver import run_sweep
from plw.experiment.store import ResultStore
from plw.experiment.study import load_study
from plw.training.checkpoints import incomplete_reason

NO_SPACE = "No space left on device"


def one_line_error(code: int, err: str) -> str:
    """The one `error:` line, which ends stderr (training's own logs come before it), after exit 2."""
    assert code == 2 and "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    return errors[0].removeprefix("error: ")


@contextlib.contextmanager
def tmpfs(where: Path, size: str):
    """A tmpfs of `size` mounted at `where` (skips the test when mounting is not permitted)."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here ({done.stderr.strip() or done.returncode})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(where: Path) -> Path:
    """Write zeros until the filesystem is full; return the filler file."""
    filler = where / "filler"
    with filler.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as err:
            assert err.errno == errno.ENOSPC
    return filler


# --- plw train: the second checkpoint does not fit ---------------------------------------------


@pytest.fixture(scope="module")
def train_config(tmp_path_factory, stories_path, alpaca_path):
    config = {"model": str(stories_path), "prompt_loss_weight": 0.1, "max_length": 96, "max_steps": 4,
              "data": {"path": str(alpaca_path), "limit": 32, "skip_bad_records": True}, "batch_size": 4,
              "learning_rate": 3e-3, "lr_scheduler": "cosine", "warmup_ratio": 0.0, "logging_steps": 1,
              "checkpoint_steps": 1}  # fmt: skip
    path = tmp_path_factory.mktemp("train") / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def uninterrupted(train_config):
    """metrics.json of the run without a fault."""
    from plw.config import load_config
    from plw.training.config import TrainConfig
    from plw.training.run import train

    out = train_config.parent / "whole"
    return train(load_config(TrainConfig, train_config, [f"output_dir={out}"]), progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["tmpfs", "injected"])
def test_a_checkpoint_that_fills_the_disk(train_config, uninterrupted, tmp_path, plw_cli, monkeypatch, how):
    """A 5 MiB tmpfs holds one checkpoint of stories260K (3.2 MB) but not the second, which Trainer
    writes before it removes the first; or torch.save raises ENOSPC for the second's optimizer."""
    where = tmp_path / "fs"
    with contextlib.ExitStack() as stack:
        if how == "tmpfs":
            stack.enter_context(tmpfs(where, "5m"))
        else:
            save = torch.save

            def full(obj, f, *args, **kwargs):
                if str(f).endswith(os.path.join("checkpoint-2", "optimizer.pt")):
                    Path(f).write_bytes(b"\0" * 1000)  # part of it, then the disk is full
                    raise OSError(errno.ENOSPC, NO_SPACE)
                return save(obj, f, *args, **kwargs)

            monkeypatch.setattr(torch, "save", full)
        out = where / "out"
        code, _, err = plw_cli("train", train_config, f"output_dir={out}")
        second = out / "checkpoints" / "checkpoint-2"
        assert one_line_error(code, err) == f"{second}: cannot write: {NO_SPACE} (removed the partial files)"
        assert not second.exists() and not (out / "metrics.json").exists()
        assert incomplete_reason(out / "checkpoints" / "checkpoint-1") is None  # the last complete one

        monkeypatch.setattr(torch, "save", torch.save if how == "tmpfs" else save)
        if how == "tmpfs":
            subprocess.run(["mount", "-o", "remount,size=64m", str(where)], check=True)
        code, _, err = plw_cli("train", train_config, f"output_dir={out}")
        assert code == 0, err
        resumed = json.loads((out / "metrics.json").read_text())
        history = json.loads((out / "log_history.json").read_text())
    assert [e["step"] for e in history if "loss" in e] == [1, 2, 3, 4]
    for key in ("final_loss", "final_prompt_loss", "final_completion_loss"):
        assert resumed[key] == pytest.approx(uninterrupted[key], rel=1e-6), key


# --- plw sweep: the disk fills up while a cell trains ------------------------------------------


@pytest.mark.slow
def test_a_disk_that_fills_up_during_a_sweep(fault_reference, tmp_path, plw_cache):
    """The study lives on a 32 MiB tmpfs; once the second cell has checkpoint-2 the test fills the
    disk, as another job would. The sweep stops in one line; the rerun after freeing space resumes."""
    args = [TINY, *overrides(tmp_path / "fs" / "study", "train.checkpoint_steps=2")]
    with tmpfs(tmp_path / "fs", "32m") as where:
        study_dir, log = where / "study", tmp_path / "sweep.log"
        with reaped(start_sweep(args, log, env={STEP_SLEEP_ENV: "0.5"})) as driver:
            condition = one_done_one_training(study_dir / "cells", steps=3)
            done, busy = wait_until(condition, "a cell done, one past checkpoint-2", process=driver, log=log)
            filler = fill(where)
            code = driver.wait(timeout=120)
        text = log.read_text(errors="replace")
        assert code == 2 and "Traceback" not in text, text[-3000:]
        [line] = [x for x in text.splitlines() if x.startswith("error: ")]
        print(line)
        assert line.startswith(f"error: {study_dir}") and f"cannot write: {NO_SPACE}" in line
        started = read_json(done / RESULT)["run"]["started"]  # the finished cell is whole
        complete = [p for p in busy.glob("train/checkpoints/checkpoint-*") if incomplete_reason(p) is None]
        last = max(complete, key=lambda p: int(p.name.removeprefix("checkpoint-")))  # kept, whole
        assert int(last.name.removeprefix("checkpoint-")) >= 2
        assert read_status(busy).get("state") in ("running", "interrupted")  # resumable, never failed

        filler.unlink()
        states = run_sweep(load_study(TINY, args[1:]), source=str(TINY), executor="local")
        assert set(states.values()) == {"done"}
        assert read_json(done / RESULT)["run"]["started"] == started
        assert f"resuming from {last}" in (busy / LOG).read_text()
        assert_same_results(study_dir, fault_reference)


# --- results.sqlite and per-item results -------------------------------------------------------


def test_results_sqlite_that_fills_up(tmp_path, plw_cli, monkeypatch, in_process):
    """The store cannot grow once the second cell ran (SQLite's SQLITE_FULL, as on a full disk)."""
    full = {"on": False}
    connect = sqlite3.connect

    def capped(path, *args, **kwargs):
        con = connect(path, *args, **kwargs)
        if full["on"]:
            pages = con.execute("PRAGMA page_count").fetchone()[0]
            con.execute(f"PRAGMA max_page_count = {pages}")
        return con

    def cell(spec, cell_dir):
        full["on"] = spec.factors["plw"] == 1.0
        return {"rows": [{"task": "arc_easy", "metric": f"m{i}", "value": i} for i in range(3000)]}

    monkeypatch.setattr("plw.experiment.store.sqlite3.connect", capped)
    in_process(cell)
    study = write_study(tmp_path)
    code, _, err = plw_cli("sweep", study)
    store_path = tmp_path / "study" / "results.sqlite"
    line = one_line_error(code, err)
    assert line.startswith(f"{store_path}: cannot write: {NO_SPACE} (database or disk is full")
    cells = sorted((tmp_path / "study" / "cells").iterdir())
    assert all((c / RESULT).is_file() for c in cells)  # both cells' results are on disk
    full["on"] = False
    assert ResultStore(store_path).cells() == {cells[0].name}  # the failed insert was rolled back

    calls = []
    in_process(lambda spec, cell_dir: calls.append(spec.id))
    code, _, err = plw_cli("sweep", study)
    assert code == 0 and calls == [], err  # nothing rerun: the store is refilled from result.json
    assert len(ResultStore(store_path).results()) == 2 * 3000


@pytest.mark.slow
def test_per_item_results_that_fill_the_disk(fault_reference, tmp_path, plw_cli, monkeypatch, in_process):
    """Writing the second cell's eval/arc_easy.jsonl fails with ENOSPC halfway."""
    write_bytes = Path.write_bytes

    def full(self, data):
        if self.name.endswith(".jsonl") and "plw=1__" in str(self):
            write_bytes(self, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, NO_SPACE)
        return write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", full)
    in_process()
    study_dir = tmp_path / "study"
    code, _, err = plw_cli("sweep", TINY, *overrides(study_dir))
    busy = study_dir / "cells" / "plw=1__model=stories260K__dataset=alpaca__seed=0__reg=none"
    assert one_line_error(code, err) == f"{busy / 'eval' / 'arc_easy.jsonl'}: cannot write: {NO_SPACE}"
    status = read_status(busy)
    assert status["state"] == "interrupted" and status["disk_full"]
    assert not list(busy.glob("eval/*.tmp*"))  # no half file left behind
    done = study_dir / "cells" / "plw=0__model=stories260K__dataset=alpaca__seed=0__reg=none"
    started = read_json(done / RESULT)["run"]["started"]

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    code, _, err = plw_cli("sweep", TINY, *overrides(study_dir))
    assert code == 0, err
    assert read_json(done / RESULT)["run"]["started"] == started
    assert read_json(busy / RESULT)["run"]["training_reused"] is True  # only the evaluation reran
    assert_same_results(study_dir, fault_reference)
