"""`plw sweep`, `plw status` and `plw results`: run a factorial study, follow it, export its table."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from plw.cli.console import console, err_console


def sweep_command(
    study: Path = typer.Argument(..., help="study file (YAML)"),
    overrides: list[str] | None = typer.Argument(None, help="key=value overrides, e.g. factors.plw=[0,1]"),
    executor: str = typer.Option("local", "--executor", help="local (one cell at a time) or ray"),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        help="join this Ray cluster (host:6379, ray://host:10001, auto); default: a private local one",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="validate and show the cells with estimates; run nothing"
    ),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="rerun failed cells too"),
    from_results: Path | None = typer.Option(
        None,
        "--from-results",
        help="mark the cells this exported results table has as done, without running them",
    ),
    from_items: Path | None = typer.Option(
        None,
        "--from-items",
        help="with --from-results: the per-item export (plw results --items) of those cells",
    ),
    grace: float | None = typer.Option(
        None,
        "--grace",
        help="seconds from SIGTERM/SIGUSR1 until running cells have checkpointed and the sweep exits 75 "
        "(default 25)",
    ),
) -> None:
    """Run every cell of a study that has not finished; rerun the same command to resume."""
    from plw.experiment.driver import check_study_dir, run_sweep
    from plw.experiment.plan import make_plan
    from plw.experiment.status import load_target
    from plw.preemption import set_grace

    set_grace(grace)

    cfg, source = load_target(study, overrides)
    imports = _load_imports(from_results, from_items)
    if executor == "ray" and not ray_address and os.environ.get("RAY_ADDRESS") and not dry_run:
        # Ray itself would join that cluster; plw joins one only when told to (docs/sweeps.md).
        err_console.print(
            f"note: RAY_ADDRESS={os.environ['RAY_ADDRESS']} is ignored: plw starts its own local Ray "
            "cluster; pass --ray-address auto to join that one",
            highlight=False,
        )
    if dry_run:
        plan = make_plan(cfg, source)
        check_study_dir(plan)  # what the real run would fail on is part of validating it
        _dry_run(plan)
        if imports is not None:
            from plw.experiment.imported import importable

            n = len(importable(plan, imports))
            line = f"{n} cell(s) would be imported from {imports.source}; they will not run"
            console.print(line, highlight=False, soft_wrap=True)
        return
    states = run_sweep(cfg, source=source, executor=executor, ray_address=ray_address,
                       retry_failed=retry_failed, console=err_console, imports=imports)  # fmt: skip
    done = sum(s == "done" for s in states.values())
    failed = [c for c, s in states.items() if s == "failed"]
    console.print(
        f"{done}/{len(states)} cells done, {len(failed)} failed -> {cfg.directory()}", highlight=False
    )
    if failed:
        hint = "" if retry_failed else "; rerun with --retry-failed to try them again"
        console.print(f"[red]failed[/]: {', '.join(failed)}{hint}", highlight=False)
        raise typer.Exit(1)


def _load_imports(results: Path | None, items: Path | None):
    """The exports to import (read and checked before anything runs), or None."""
    from plw.errors import PLWError
    from plw.experiment.imported import load_imports

    if results is None:
        if items is not None:
            raise PLWError("--from-items: needs --from-results (the aggregate table of the same cells)")
        return None
    return load_imports(results, items)


def _dry_run(plan) -> None:
    from plw.experiment.estimate import estimate, human
    from plw.experiment.progress import print_cells

    rows, guesses = [], []
    for index, cell in enumerate(plan.cells, start=1):
        guess = estimate(plan.configs[cell.id])
        guesses.append(guess)
        rows.append(
            {"#": index, "cell": cell.id, "state": plan.states[cell.id], "tokens": human(guess.tokens),
             "params": human(guess.parameters), "FLOPs": human(guess.flops)}
        )  # fmt: skip
    title = f"study {plan.study.name}: {len(plan.cells)} cells -> {plan.study_dir}"
    print_cells(console, rows, ["#", "cell", "state", "tokens", "params", "FLOPs"], title=title)
    console.print(compute_line(guesses), highlight=False, soft_wrap=True)  # one line, even when piped


def compute_line(guesses: list) -> str:
    """The total compute of a dry run, or why it is unknown (never a sum of unknowns shown as 0)."""
    from plw.experiment.estimate import human

    known = [g.flops for g in guesses if g.flops is not None]
    missing = [g for g in guesses if g.flops is None]
    total = f"~ {human(sum(known))}FLOPs (6 x params x tokens)"
    if not missing:
        return f"total training compute {total}; nothing was run"
    why = missing[0].unknown or "no estimate"
    if not known:
        return f"total training compute unknown: {why}; nothing was run"
    return (
        f"total training compute unknown for {len(missing)} of {len(guesses)} cells ({why}); "
        f"the others {total}; nothing was run"
    )


def status_command(study: Path = typer.Argument(..., help="study file (YAML) or study directory")) -> None:
    """Show done / running / failed / pending cells and an ETA."""
    from plw.experiment.progress import format_duration, print_cells
    from plw.experiment.status import status_of, summary_line

    status = status_of(study)
    rows = [{**r, "plw": f"{r['plw']:g}", "wall": format_duration(r["wall"])} for r in status.rows]
    print_cells(console, rows, ["#", "cell", "state", "wall", "note"])
    console.print(summary_line(status), highlight=False)


def results_command(
    study: Path = typer.Argument(..., help="study file (YAML) or study directory"),
    fmt: str = typer.Option("csv", "--format", "-f", help="csv, parquet or json"),
    output: Path | None = typer.Option(None, "-o", "--output", help="output file; default stdout (csv/json)"),
    table: str = typer.Option(
        "results",
        "--table",
        help="results (tidy metrics), runs (run metadata) or layers (per-layer distances)",
    ),
    items: bool = typer.Option(
        False, "--items", help="export the per-item table instead (-o FILE: .csv, .csv.gz or .parquet)"
    ),
) -> None:
    """Export the study's results store as a tidy table."""
    from plw.errors import PLWError
    from plw.experiment.status import load_target
    from plw.experiment.store import export, render
    from plw.experiment.store_rebuild import open_store
    from plw.files import check_output_path

    study_dir = study if study.is_dir() else load_target(study)[0].directory()
    if items:
        _export_items(study_dir, output, table, fmt)
        return
    if table not in ("results", "runs", "layers"):
        raise PLWError(f"--table: unknown table {table!r}; use results, runs or layers")
    if output is None and fmt == "parquet":
        output = study_dir / f"{table}.parquet"
    if output is not None:
        check_output_path(output, what="-o/--output")
    store = open_store(study_dir)
    frame = getattr(store, table)()
    if output is None:
        sys.stdout.write(render(frame, fmt))
        return
    export(frame, output, fmt)
    err_console.print(f"{len(frame)} rows -> {output}", highlight=False)


def _export_items(study_dir: Path, output: Path | None, table: str, fmt: str) -> None:
    """`plw results --items`: cell, task, item, metric, value, item_hash (factors: the results export).

    The file's format follows its name (.csv, .csv.gz, .parquet); without -o, csv or json to stdout.
    """
    from plw.analysis.items import SUFFIXES
    from plw.errors import PLWError
    from plw.experiment.store import render
    from plw.experiment.store_items import export_items
    from plw.experiment.store_rebuild import open_store
    from plw.files import check_output_path

    if table != "results":
        raise PLWError("--items: exports the per-item table; leave out --table")
    if output is not None:
        if not output.name.lower().endswith(SUFFIXES):
            raise PLWError(f"-o/--output: {output}: name the item file .csv, .csv.gz or .parquet")
        check_output_path(output, what="-o/--output")
    frame = open_store(study_dir).items(factors=False)
    if output is None:
        sys.stdout.write(render(frame, fmt))
        return
    export_items(frame, output)
    err_console.print(f"{len(frame)} rows -> {output}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep_command)
    app.command("status")(status_command)
    app.command("results")(results_command)
