"""Where a study stands: per-cell states, counts and an ETA, for `plw status` and `--dry-run`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plw.errors import PLWError
from plw.experiment.celldir import error_line, read_result, read_status
from plw.experiment.lock import lock_held
from plw.experiment.plan import Plan, make_plan
from plw.experiment.progress import format_duration
from plw.experiment.study import Study, load_study

ORDER = ("done", "running", "failed", "interrupted", "changed", "pending")


@dataclass
class StudyStatus:
    """Counts per state, one row per cell, and the estimated time left.

    Attributes:
        counts: cells per state (see ORDER).
        rows: per cell: #, cell, state, plw, model, dataset, seed, regularizer, wall, note.
        mean_wall_s: mean wall time of finished cells.
        eta_s: mean wall time x cells left (minus time already spent on running ones), one at a time.
    """

    counts: dict[str, int]
    rows: list[dict[str, Any]]
    mean_wall_s: float | None
    eta_s: float | None


def load_target(target: Path, overrides: list[str] | None = None) -> tuple[Study, str]:
    """A study from its YAML file or from a study directory (its saved study.yaml)."""
    if target.is_dir():
        saved = target / "study.yaml"
        if not saved.is_file():
            raise PLWError(f"{target}: no study.yaml here; pass the study file, or run `plw sweep` first")
        study = load_study(saved, overrides)
        study.output_dir = str(target)  # the directory may have moved since study.yaml was written
        return study, str(saved)
    return load_study(target, overrides), str(target)


def _row(plan: Plan, index: int, cell, state: str, now: float) -> dict[str, Any]:
    cell_dir = plan.cell_dir(cell)
    row = {"#": index, "cell": cell.id, "state": state, **cell.factors(), "wall": None, "note": ""}
    if state == "done":
        row["wall"] = (read_result(cell_dir).get("run") or {}).get("wall_time_s")
    elif state == "running":
        status = read_status(cell_dir)
        row["wall"] = now - float(status.get("started", now))
        row["note"] = status.get("stage", "")
    elif state == "failed":
        row["note"] = error_line(cell_dir)[:100]
    elif state == "changed":
        row["note"] = "finished under other settings"
    elif state == "interrupted":  # why, when it stopped itself (preempted, disk full)
        row["note"] = str(read_status(cell_dir).get("reason") or "")[:100]
    return row


def study_status(plan: Plan) -> StudyStatus:
    """The status of every cell of a plan (from `make_plan`)."""
    live, now = lock_held(plan.study_dir), time.time()
    rows = []
    for index, cell in enumerate(plan.cells, start=1):
        state = plan.states[cell.id]
        if state == "interrupted" and live:
            state = "running"
        rows.append(_row(plan, index, cell, state, now))
    counts = {s: sum(r["state"] == s for r in rows) for s in ORDER}
    walls = [r["wall"] for r in rows if r["state"] == "done" and r["wall"] is not None]
    mean = sum(walls) / len(walls) if walls else None
    eta = None
    if mean is not None:
        waiting = counts["pending"] + counts["interrupted"]
        running = sum(max(mean - (r["wall"] or 0.0), 0.0) for r in rows if r["state"] == "running")
        eta = mean * waiting + running
    return StudyStatus(counts, rows, mean, eta)


def status_of(target: Path) -> StudyStatus:
    """Load a study (file or directory) and report its status."""
    study, source = load_target(target)
    return study_status(make_plan(study, source))


def summary_line(status: StudyStatus) -> str:
    """'3 done, 1 running, 0 failed, 2 pending; ETA 4m 10s (mean 1m 20s per cell)'."""
    parts = [
        f"{status.counts[s]} {s}" for s in ORDER if status.counts[s] or s in ("done", "failed", "pending")
    ]
    eta = f"; ETA {format_duration(status.eta_s)}" if status.eta_s is not None else ""
    mean = (
        f" (mean {format_duration(status.mean_wall_s)} per cell, one at a time)" if status.mean_wall_s else ""
    )
    return ", ".join(parts) + eta + mean
