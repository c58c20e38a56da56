"""A cell's directory: its spec, status, outputs and result, written crash-safely.

Layout of `STUDY_DIR/cells/<id>/`:
    cell.json     what to run (CellSpec), written by the driver
    config.yaml   the resolved TrainConfig
    status.json   {"state": running|failed|interrupted, "stage", "pid", "host", "token", ...}, by the
                  worker; interrupted (preempted, disk full) says why in "reason" and reruns without
                  --retry-failed; "retries" lists earlier attempts whose worker died (Ray)
    stop          the driver asks the cell to stop at its next step boundary (written on preemption;
                  the worker polls it, so it reaches Ray workers on other nodes)
    train/        training outputs (plw.training.run.train); metrics.json is written there last
    eval/         benchmark outputs (plw.evaluation.run.evaluate)
    worker.log    the worker's stdout and stderr
    error.txt     the error and traceback of a failed cell
    result.json   metrics and run facts; written atomically, last. Its presence alone marks a cell done.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from plw.files import write_text_atomic

SPEC, CONFIG, STATUS, RESULT, ERROR, LOG, STOP = (
    "cell.json",
    "config.yaml",
    "status.json",
    "result.json",
    "error.txt",
    "worker.log",
    "stop",
)
TRAIN = "train"
STATES = ("done", "running", "failed", "interrupted", "pending")


@dataclass
class CellSpec:
    """Everything a worker needs to run a cell, besides config.yaml.

    Attributes:
        study: study name.
        id: cell id.
        factors: factor values (plw, model, dataset, seed, regularizer).
        base_model: the resolved base model spec (for weight distances).
        eval: `EvalSettings` as a mapping.
        keep_model: keep train/model after measuring.
        fingerprint: hash of everything that determines the cell's results.
        token: random per attempt; a worker writes its result only while the status holds its token.
        env: environment variables to set in the worker (e.g. PLW_CACHE_DIR).
        launcher: command prefix for multi-process training (empty: train in the worker).
    """

    study: str
    id: str
    factors: dict[str, Any]
    base_model: str
    eval: dict[str, Any]
    keep_model: bool = True
    fingerprint: str = ""
    token: str = ""
    env: dict[str, str] = field(default_factory=dict)
    launcher: list[str] = field(default_factory=list)

    def save(self, cell_dir: Path) -> None:
        write_json_atomic(cell_dir / SPEC, asdict(self))

    @classmethod
    def load(cls, cell_dir: Path) -> CellSpec:
        data = read_json(cell_dir / SPEC)
        if data is None:
            raise FileNotFoundError(f"{cell_dir / SPEC}: missing or unreadable cell spec")
        return cls(**data)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file, flush it to disk, then rename it into place."""
    # mkdir=False: a cell directory removed under a worker must not be recreated by it.
    write_text_atomic(path, json.dumps(data, indent=2, default=str), mkdir=False)


def read_json(path: Path) -> Any | None:
    """The parsed file, or None when it is missing or not valid JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_status(cell_dir: Path) -> dict[str, Any]:
    """The cell's status mapping ({} when there is none)."""
    status = read_json(cell_dir / STATUS)
    return status if isinstance(status, dict) else {}


def write_status(cell_dir: Path, state: str, **fields: Any) -> None:
    """Replace status.json, keeping earlier fields (pid, token, started) not given again."""
    status = {**read_status(cell_dir), **fields, "state": state, "updated": time.time()}
    write_json_atomic(cell_dir / STATUS, status)


def set_stage(cell_dir: Path, stage: str) -> None:
    """Record which stage a running cell is in (train, eval, mechanisms); shown by the driver."""
    write_status(cell_dir, "running", stage=stage, stage_started=time.time())


def read_result(cell_dir: Path) -> dict[str, Any] | None:
    """The cell's result, or None if it has not finished (or the file is unreadable)."""
    result = read_json(cell_dir / RESULT)
    if not isinstance(result, dict) or not isinstance(result.get("rows"), list):
        return None
    return result


def cell_state(cell_dir: Path) -> str:
    """done (a readable result.json), failed, running (maybe stale: see the driver), interrupted
    (stopped resumably: preempted, disk full) or pending."""
    if read_result(cell_dir) is not None:
        return "done"
    state = read_status(cell_dir).get("state")
    return state if state in ("failed", "running", "interrupted") else "pending"


def finished_training(cell_dir: Path) -> bool:
    """Whether train/ holds a complete training run (its metrics.json is written last) and its model."""
    train = cell_dir / TRAIN
    return (train / "metrics.json").is_file() and (train / "model").is_dir()


def resumable_training(cell_dir: Path) -> bool:
    """Whether train/ holds a finished run or a Trainer checkpoint to resume from."""
    return finished_training(cell_dir) or any((cell_dir / TRAIN / "checkpoints").glob("checkpoint-*"))


def reset(cell_dir: Path, *, keep_training: bool = False) -> None:
    """Remove everything in a cell directory, so a rerun starts from scratch.

    Args:
        keep_training: keep train/ (the caller has checked it holds a finished or checkpointed run
            of the same config).
    """
    if cell_dir.exists():
        for child in cell_dir.iterdir():
            if keep_training and child.name == TRAIN:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    cell_dir.mkdir(parents=True, exist_ok=True)


def mark_failed(cell_dir: Path, message: str, details: str = "") -> None:
    """Record a failure: error.txt (message, then details such as a traceback) and status failed."""
    text = message.rstrip() + "\n" + (f"\n{details.rstrip()}\n" if details else "")
    write_text_atomic(cell_dir / ERROR, text, mkdir=False)
    write_status(cell_dir, "failed", error=message.strip().splitlines()[0] if message.strip() else "failed")


def mark_interrupted(cell_dir: Path, reason: str, *, disk_full: bool = False) -> None:
    """Leave a cell resumable, not failed: status interrupted with the one-line reason."""
    write_status(cell_dir, "interrupted", reason=reason, disk_full=disk_full)


def reset_for_retry(cell_dir: Path) -> int:
    """Ready a cell whose worker died for another attempt; return the attempt's number (2, 3, ...).

    Keeps the spec, config and training outputs (the retry resumes from the last complete
    checkpoint: `plw.training.checkpoints` sets half-written ones aside) and worker.log (appended to);
    the failure moves to status "retries" and error-attempt-N.txt. The spec gets a fresh token, so a
    worker of the lost attempt that is somehow still alive can no longer record a result.
    """
    status = read_status(cell_dir)
    retries = [*status.get("retries", []), {k: status.get(k) for k in ("error", "host", "pid", "updated")}]
    if (cell_dir / ERROR).exists():
        (cell_dir / ERROR).rename(cell_dir / f"error-attempt-{len(retries)}.txt")
    for name in (RESULT, STOP, "eval"):
        path = cell_dir / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    spec = CellSpec.load(cell_dir)
    spec.token = uuid.uuid4().hex
    spec.save(cell_dir)
    write_json_atomic(cell_dir / STATUS, {"state": "pending", "retries": retries, "updated": time.time()})
    return len(retries) + 1


def error_line(cell_dir: Path) -> str:
    """The first line of a failed cell's error."""
    status = read_status(cell_dir)
    if status.get("error"):
        return str(status["error"])
    try:
        return (cell_dir / ERROR).read_text(encoding="utf-8").strip().splitlines()[0]
    except (OSError, IndexError):
        return "failed (no error recorded)"
