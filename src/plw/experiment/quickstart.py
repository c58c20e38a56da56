"""The quickstart: the shipped miniature study, run by the same sweep, analysis and report code.

`run_demo` loads `configs/studies/quickstart.yaml`, optionally swaps the model or adds local
multiple-choice benchmarks, runs the sweep (resuming an earlier run), writes the report and returns
a summary for the terminal.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from plw.errors import PLWError
from plw.experiment.study import Study, load_study

REPO_CONFIG = Path(__file__).resolve().parents[3] / "configs" / "studies" / "quickstart.yaml"
MC_TASKS = ("arc_easy", "piqa")


def quickstart_file() -> Path:
    """The shipped quickstart study (found next to the package in a source checkout)."""
    for candidate in (Path("configs/studies/quickstart.yaml"), REPO_CONFIG):
        if candidate.is_file():
            return candidate
    raise PLWError("configs/studies/quickstart.yaml not found: run `plw demo` from the plw repository")


def demo_study(model: str | None, data_dir: str | None, overrides: list[str]) -> Study:
    """The quickstart study with the demo's options applied.

    A different model gets its own study directory, so its cells never mix with the default's.
    The user's `key=value` overrides come last, so they win.
    """
    extra: list[str] = []
    if model:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(model).name or model).strip("-") or "model"
        extra += [f"models.default={model}", f"output_dir=studies/quickstart-{slug}"]
    if data_dir:
        if not Path(data_dir).is_dir():
            raise PLWError(f"--data-dir {data_dir}: not a directory")
        tasks = ",".join([*load_study(quickstart_file()).eval.tasks, *MC_TASKS])
        extra += [f"eval.data_dir={Path(data_dir).resolve()}", f"eval.tasks=[{tasks}]"]
    return load_study(quickstart_file(), [*extra, *overrides])


def run_demo(
    model: str | None = None, data_dir: str | None = None, overrides: list[str] | None = None, console=None
) -> dict[str, Any]:
    """Run the quickstart study, analyse it and write its report.

    Returns:
        {"study_dir", "states", "report": build_report's output or None, "table": per-PLW rows,
        "power": `demo_power` or None}.
    """
    from plw.experiment.driver import run_sweep
    from plw.models import resolve_model

    study = demo_study(model, data_dir, overrides or [])
    resolve_model(study.models["default"])  # a missing wheel or model fails before anything runs
    states = run_sweep(study, source="quickstart", console=console)
    out: dict[str, Any] = {"study_dir": study.directory(), "states": states, "report": None, "table": []}
    if not any(state == "done" for state in states.values()):
        return out
    from plw.analysis.results import load_results
    from plw.report.build import build_report

    out["report"] = build_report(study.directory(), bootstrap=100)
    out["table"] = summary_table(load_results(study.directory()))
    out["power"] = demo_power(study)
    return out


def summary_table(results) -> list[dict[str, Any]]:
    """Per PLW: mean synthetic exact match over the scored families, retention KL, validation loss."""
    wanted = {
        ("retention", "kl_estimate"): "KL from base",
        ("train", "val_completion_loss"): "val completion loss",
    }
    rows: dict[float, dict[str, Any]] = {}
    matches: dict[float, list[float]] = {}
    for record in results.to_dict(orient="records"):
        plw = float(record["plw"])
        row = rows.setdefault(plw, {"PLW": plw})
        if str(record["task"]).startswith("synthetic") and record["metric"] == "exact_match":
            matches.setdefault(plw, []).append(record["value"])
        elif (name := wanted.get((record["task"], record["metric"]))) is not None:
            row[name] = record["value"]
    for plw, values in matches.items():
        rows[plw]["exact match"] = sum(values) / len(values)
    return [rows[p] for p in sorted(rows)]


REPLICATION = Path(__file__).resolve().parents[3] / "docs" / "results" / "replicate-cpu.csv"
"""The committed results of configs/studies/replicate-cpu.yaml (docs/replication.md)."""


def demo_power(study: Study) -> dict[str, Any] | None:
    """How likely this design is to detect the paper's effect and the one the replication measured.

    The item-level model's approximation (`plw power` prints the same figure as "approximation",
    beside its simulated one; no simulation here, so it costs nothing at the end of the demo).
    Returns None when the study's benchmarks cannot be read.
    """
    from dataclasses import replace

    from plw.analysis.item_power import PAPER_ITEM_EFFECT
    from plw.analysis.item_power_approx import approximate_item_power
    from plw.experiment.item_power_design import answered_items, resolve_item_effect
    from plw.experiment.power_design import pilot_effect, study_design

    try:
        design = study_design(study).design
    except PLWError:
        return None
    design = replace(design, items=answered_items(design.items))  # what `plw power` takes
    if not design.items:
        return None
    out: dict[str, Any] = {"cells": design.cells, "paper": approximate_item_power(design, PAPER_ITEM_EFFECT)}
    if REPLICATION.is_file():
        effect = resolve_item_effect(str(REPLICATION), "short", pilot_effect(REPLICATION, "short"))
        out["replication"] = approximate_item_power(design, effect)
        out["replication_curvature"] = effect.curvature
    return out
