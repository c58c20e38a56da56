"""The sweep driver: run what is left of a plan (`plw.experiment.plan`) and keep the results store current.

Crash safety rests on three rules. A cell is done only when its result.json exists (written
atomically, last, by the worker). The driver holds an exclusive lock on the study directory while it
runs (`plw.experiment.lock`), so on start any cell still marked running belongs to a dead driver: it
is reset and rerun (resuming a checkpointed training). The store is rebuilt from the result.json
files on every start, so it never disagrees with them, whenever the last driver was killed.

Faults that stop the sweep rather than a cell: SIGTERM / SIGUSR1 (running cells checkpoint and stay
resumable; `Preempted`, exit 75) and a full disk (one line naming the path, exit 2).
"""

from __future__ import annotations

import uuid
from pathlib import Path

from rich.console import Console

from plw import preemption
from plw.analysis.items import STUDY_ITEMS_FILE as ITEMS_EXPORT
from plw.errors import PLWError, WriteError
from plw.experiment.celldir import CONFIG, error_line, read_result, read_status, reset, resumable_training
from plw.experiment.cells import Cell, absolute_path
from plw.experiment.imported import import_cells
from plw.experiment.lock import study_lock
from plw.experiment.plan import Plan, make_plan
from plw.experiment.store import ResultStore, export
from plw.experiment.store_items import cell_items, export_items
from plw.experiment.study import Study
from plw.files import check_output_path, write_text_atomic


def check_study_dir(plan: Plan) -> None:
    """Fail in one line, before any cell runs, when the study directory cannot be written."""
    check_output_path(plan.study_dir, kind="dir", what=f"{plan.source}: study directory")


def sync_store(plan: Plan, store: ResultStore) -> None:
    """Make the store hold exactly the study's done and failed cells, from their files."""
    store.keep_only({c.id for c in plan.cells if plan.states[c.id] in ("done", "failed")})
    for cell in plan.cells:
        cell_dir, state = plan.cell_dir(cell), plan.states[cell.id]
        if state == "done":
            record_done(plan, store, cell)
        elif state == "failed":
            store.record_failure(plan.study.name, cell.id, error_line(cell_dir))


def record_done(plan: Plan, store: ResultStore, cell: Cell) -> None:
    """Record a done cell from its files: result.json, and its per-item rows (eval/ or items.csv.gz)."""
    cell_dir = plan.cell_dir(cell)
    store.record(plan.study.name, cell.factors(), cell.id, read_result(cell_dir), cell_items(cell_dir))


def write_results_csv(plan: Plan, store: ResultStore) -> None:
    """STUDY_DIR/results.csv and, when cells scored items, STUDY_DIR/items.csv.gz: the tables
    `plw analyze` reads, each replaced atomically."""
    export(store.results(), plan.study_dir / "results.csv", "csv")
    items = store.items(factors=False)
    if len(items):
        export_items(items, plan.study_dir / ITEMS_EXPORT)


def prepare_cell(plan: Plan, cell: Cell) -> Path:
    """Empty the cell's directory and write its config and spec (with a fresh attempt token).

    A finished training of the same config is kept, so a cell that failed or was interrupted after
    training (in evaluation, say) reruns only what came after it; so is a training cut off after a
    checkpoint (`train.checkpoint_steps`), which then resumes from it.
    """
    from plw.config import yaml_text

    cell_dir = plan.cell_dir(cell)
    config_text = yaml_text(plan.configs[cell.id])
    old_config = cell_dir / CONFIG
    same = old_config.is_file() and old_config.read_text(encoding="utf-8") == config_text
    reset(cell_dir, keep_training=same and resumable_training(cell_dir))
    write_text_atomic(old_config, config_text, mkdir=False)
    spec = plan.specs[cell.id]
    spec.token = uuid.uuid4().hex
    spec.save(cell_dir)
    return cell_dir


def cells_to_run(plan: Plan, retry_failed: bool) -> list[Cell]:
    """Pending and interrupted cells, plus failed ones with `retry_failed`.

    Raises:
        PLWError: a cell finished under a different configuration than the study now gives.
    """
    changed = [c.id for c in plan.cells if plan.states[c.id] == "changed"]
    if changed:
        raise PLWError(
            f"{plan.source}: {len(changed)} finished cell(s) used other train/eval settings than the study "
            f"now gives, e.g. {changed[0]}; restore the settings, use another output_dir, or delete those "
            "cell directories to rerun them"
        )
    wanted = {"pending", "interrupted"} | ({"failed"} if retry_failed else set())
    return [c for c in plan.cells if plan.states[c.id] in wanted]


def materialize_models(plan: Plan, cells: list[Cell]) -> None:
    """Convert each GGUF base model once, before cells run, so parallel cells never race to convert."""
    from plw.models import materialize, resolve_model

    for spec in sorted({plan.configs[c.id].model for c in cells}):
        ref = resolve_model(spec)
        if ref.gguf_file is not None:
            materialize(ref)


def run_plan(
    plan: Plan, executor, *, retry_failed: bool = False, console: Console | None = None, imports=None
) -> dict[str, str]:
    """Run what is left of a plan with an executor; return every cell's final state.

    Args:
        plan: from `make_plan`.
        executor: a `LocalExecutor` or `RayExecutor`.
        retry_failed: rerun failed cells too.
        console: where progress goes (default: stderr).
        imports: `plw.experiment.imported.Imports`: cells to mark done from exports, not run.
    """
    from plw.experiment.progress import SweepProgress

    console = console or Console(stderr=True)
    check_study_dir(plan)
    with study_lock(plan.study_dir):
        if imports is not None:
            import_cells(plan, imports)
        plan.classify()  # again, under the lock: another driver may have run cells since make_plan
        todo = cells_to_run(plan, retry_failed)
        store = ResultStore(plan.study_dir / "results.sqlite")
        _write_study_yaml(plan)
        sync_store(plan, store)
        write_results_csv(plan, store)
        materialize_models(plan, todo)
        by_dir = {plan.cell_dir(c): c for c in todo}

        def finished(cell_dir: Path, state: str) -> None:
            cell = by_dir[cell_dir]
            stop_on_full_disk(cell_dir, state)
            plan.states[cell.id] = state if state in ("done", "failed") else "interrupted"
            if state == "done":
                record_done(plan, store, cell)
            elif state == "failed":
                store.record_failure(plan.study.name, cell.id, error_line(cell_dir))
            write_results_csv(plan, store)

        dirs = [prepare_cell(plan, c) for c in todo]
        done_before = [plan.cell_dir(c) for c in plan.cells if plan.states[c.id] == "done"]
        walls = [((read_result(d) or {}).get("run") or {}).get("wall_time_s") for d in done_before]
        with (
            preemption.handling(watchdog=False),
            SweepProgress(
                len(plan.cells), len(done_before), console, on_finished=finished, walls=walls, todo=len(dirs)
            ) as progress,
        ):
            executor.run(dirs, progress)
            if preemption.requested():
                stopped = sum(plan.states[c.id] == "interrupted" for c in todo)
                raise preemption.Preempted(
                    f"preempted by {preemption.requested()}: {stopped} running cell(s) saved a checkpoint "
                    "and stay resumable, finished cells are kept; rerun the same command to resume"
                )
    return plan.states


def stop_on_full_disk(cell_dir: Path, state: str) -> None:
    """A cell stopped because the disk is full: stop the sweep in one line naming the path (exit 2),
    since every other cell would fail the same way. The cell stays resumable."""
    status = read_status(cell_dir)
    if state == "interrupted" and status.get("disk_full"):
        raise PLWError(str(status.get("reason") or f"{cell_dir}: cannot write: disk full"))
    if state == "disk_full":
        raise WriteError(cell_dir, "No space left on device (the worker could not record it)", disk_full=True)


def _write_study_yaml(plan: Plan) -> None:
    """STUDY_DIR/study.yaml: the study as run (overrides applied), read by `plw status STUDY_DIR`."""
    import yaml

    data = plan.study.model_dump(mode="json")
    data["output_dir"] = str(plan.study_dir)
    # Section paths made absolute so `plw status STUDY_DIR` works from any directory. Factor values
    # stay as given: they are part of the cell ids.
    data["models"] = {name: absolute_path(spec) for name, spec in data["models"].items()}
    for name, entry in data["datasets"].items():
        if isinstance(entry, str):
            data["datasets"][name] = absolute_path(entry)
            continue
        for mapping in (entry, entry.get("eval_data")):
            if isinstance(mapping, dict) and "path" in mapping:
                mapping["path"] = absolute_path(str(mapping["path"]))
    if data["eval"]["data_dir"]:
        data["eval"]["data_dir"] = absolute_path(data["eval"]["data_dir"])
    write_text_atomic(plan.study_dir / "study.yaml", yaml.safe_dump(data, sort_keys=False))


def make_executor(
    name: str, study: Study, *, ray_address: str | None = None, runner=None, isolate: bool = True
):
    """A `LocalExecutor` or `RayExecutor` (with the study's resources) by name."""
    if name == "local":
        from plw.experiment.executor_local import LocalExecutor

        return LocalExecutor(runner, isolate=isolate)
    if name == "ray":
        from plw.experiment.executor_ray import RayExecutor, import_ray

        import_ray()  # a missing optional extra fails before any work, not after validation
        res = study.resources
        return RayExecutor(ray_address, cpus_per_cell=res.cpus_per_cell, gpus_per_cell=res.gpus_per_cell,
                           runner=runner, max_retries=res.max_retries)  # fmt: skip
    raise PLWError(f"--executor: unknown executor {name!r}; use local or ray")


def run_sweep(
    study: Study, *, source: str = "study", executor="local", ray_address: str | None = None,
    retry_failed: bool = False, runner=None, console: Console | None = None, imports=None,
) -> dict[str, str]:  # fmt: skip
    """Validate and run a study, resuming where an earlier run stopped; return each cell's state.

    Args:
        study: the study.
        source: its file name, for messages.
        executor: "local", "ray", or an executor object.
        ray_address: Ray cluster address for the ray executor.
        retry_failed: rerun failed cells too.
        runner: cell runner ("module:function"; a callable with an in-process executor).
        console: where progress goes (default: stderr).
        imports: exports to take cells from (`plw.experiment.imported.load_imports`).
    """
    if isinstance(executor, str):
        executor = make_executor(executor, study, ray_address=ray_address, runner=runner)
    plan = make_plan(study, source)
    return run_plan(plan, executor, retry_failed=retry_failed, console=console, imports=imports)
