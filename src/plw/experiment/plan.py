"""Planning a sweep: a study's cells, each one's validated config and spec, and where each stands.

`make_plan` reads in three steps: expand the study into cells (`plw.experiment.cells.expand`),
validate them in one pass that also resolves every cell's TrainConfig
(`plw.experiment.validate.check_cells`), then build each cell's spec and classify the cell from its
directory. Nothing here writes; `plw.experiment.driver` runs a plan, and `plw status` and
`plw sweep --dry-run` only read one.

A cell's fingerprint hashes what determines its results, so a finished cell whose settings have since
changed is not taken as done. Its value is stored in every cell.json: changing how it is computed
would make every finished cell of every existing study look changed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plw import preemption
from plw.experiment.celldir import CellSpec, cell_state, read_json, read_result
from plw.experiment.cells import Cell, absolute_path, expand
from plw.experiment.study import Study
from plw.experiment.validate import check_cells
from plw.training.config import TrainConfig
from plw.training.legacy import legacy_layout


@dataclass
class Plan:
    """A validated study and where each of its cells stands."""

    study: Study
    source: str
    cells: list[Cell]
    configs: dict[str, TrainConfig]
    specs: dict[str, CellSpec]
    states: dict[str, str] = field(default_factory=dict)

    @property
    def study_dir(self) -> Path:
        # Absolute: Ray workers do not share the driver's working directory.
        return self.study.directory().resolve()

    def cell_dir(self, cell: Cell | str) -> Path:
        return self.study_dir / "cells" / (cell if isinstance(cell, str) else cell.id)

    def classify(self) -> None:
        """Set every cell's state from its directory (see `make_plan`)."""
        self.states = {c.id: _state(self.cell_dir(c), self.specs[c.id]) for c in self.cells}


def fingerprint(config: TrainConfig, spec_eval: dict) -> str:
    """Hash of what determines a cell's results: its TrainConfig (bar output_dir) and eval settings."""
    # Hashed in the layout from before the loss settings moved into `loss:` (LossConfig): finished
    # cells store their fingerprint, and a new layout would make every one of them look changed.
    train = legacy_layout(config.model_dump(mode="json", exclude={"output_dir"}))
    body = {"train": train, "eval": spec_eval}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def worker_env() -> dict[str, str]:
    """Environment every worker gets, on any node: the resolved plw cache, so all cells share
    tokenisations, and the preemption grace period."""
    from plw.models import cache_dir

    return {"PLW_CACHE_DIR": str(cache_dir().expanduser().resolve()),
            preemption.GRACE_ENV: repr(preemption.grace_seconds())}  # fmt: skip


def make_plan(study: Study, source: str = "study") -> Plan:
    """Expand the study into cells, validate them (resolving each one's config), spec and classify them.

    States: done, failed, interrupted (marked running but no driver holds the study), changed (done
    under another configuration), pending.

    Raises:
        PLWError: the study does not validate; one line naming the study key behind the problem.
    """
    cells = expand(study, source)
    plan = Plan(study, source, cells, {}, {})
    plan.configs = check_cells(study, cells, lambda cell: plan.cell_dir(cell) / "train", source)
    evaluation, env = _eval_settings(study), worker_env()
    for cell in cells:
        plan.specs[cell.id] = _spec(study, cell, plan.configs[cell.id], evaluation, env)
    plan.classify()
    return plan


def _eval_settings(study: Study) -> dict[str, Any]:
    """The study's eval settings as every cell.json holds them (and its fingerprint hashes them)."""
    evaluation = study.eval.model_dump(mode="json")
    if evaluation["data_dir"]:
        evaluation["data_dir"] = absolute_path(evaluation["data_dir"])
    return evaluation


def _spec(study: Study, cell: Cell, config: TrainConfig, evaluation: dict, env: dict[str, str]) -> CellSpec:
    """What a worker needs to run the cell, besides its config (see `plw.experiment.celldir`)."""
    return CellSpec(
        study=study.name, id=cell.id, factors=cell.factors(), base_model=config.model, eval=evaluation,
        keep_model=study.keep_models, fingerprint=fingerprint(config, evaluation), env=dict(env),
        launcher=list(study.resources.launcher),
    )  # fmt: skip


def _state(cell_dir: Path, spec: CellSpec) -> str:
    """A cell's state; a finished or failed cell counts as such only under the plan's fingerprint."""
    state = cell_state(cell_dir)
    if state == "done":
        return "done" if read_result(cell_dir).get("fingerprint") == spec.fingerprint else "changed"
    if state == "failed":
        old = read_json(cell_dir / "cell.json") or {}
        return "failed" if old.get("fingerprint") == spec.fingerprint else "pending"
    return "interrupted" if state in ("running", "interrupted") else "pending"
