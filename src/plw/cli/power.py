"""`plw power STUDY.yaml [--effect paper|CURVATURE|PILOT_DIR] [--sims N] [--search]`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.table import Table

from plw.cli.console import console


def power_command(
    study_file: Path = typer.Argument(..., help="the study YAML (or a study directory)"),
    overrides: list[str] | None = typer.Argument(None, help="key=value overrides of the study"),
    effect: str = typer.Option(
        "paper", "--effect", help="paper | a curvature (e.g. -1.5) | a pilot study directory or results file"
    ),
    effect_dataset: str | None = typer.Option(None, "--effect-dataset", help="the pilot's dataset to take"),
    sims: int = typer.Option(200, "--sims", min=10, help="simulated studies"),
    alpha: float = typer.Option(0.05, "--alpha", min=1e-6, max=0.5, help="significance level"),
    seed: int = typer.Option(0, "--seed", min=0, help="random seed of the simulation"),
    workers: int = typer.Option(0, "--workers", min=0, help="processes (0: one per CPU core, at most 4)"),
    search: bool = typer.Option(False, "--search", help="also find the cheapest design reaching --target"),
    target: float = typer.Option(0.8, "--target", min=0.05, max=0.99, help="power the search aims for"),
    json_out: bool = typer.Option(False, "--json", help="print everything as JSON"),
) -> None:
    """Power of a study to detect the paper's quadratic PLW effect, by simulating and analysing it."""
    from plw.experiment.power_design import power_analysis
    from plw.experiment.status import load_target

    study, _ = load_target(study_file, overrides)
    out = power_analysis(
        study,
        effect,
        n_sims=sims,
        alpha=alpha,
        seed=seed,
        workers=workers or min(os.cpu_count() or 1, 4),
        search_target=target if search else None,
        pilot_dataset=effect_dataset,
    )
    if json_out:
        typer.echo(json.dumps(out, indent=2, default=float))
        return
    print_power(out)


def print_power(out: dict) -> None:
    """The design, the assumed effect and the result, for a person."""
    d, e, r = out["design"], out["effect"], out["result"]
    items = ", ".join(f"{b} {n}" for b, n in d["items"].items())
    console.print(
        f"[bold]design[/] of dataset {out['dataset']} (each dataset is fitted on its own): {len(d['plw'])} "
        f"PLW levels x {d['seeds']} seed(s) x {d['models']} model(s) = {d['cells_per_dataset']} cells; "
        f"items per benchmark: {items}",
        highlight=False,
    )
    for name, other in out["others"].items():
        power = other["approximate_power"]
        text = "no quadratic test (fewer than 3 PLW levels)" if power is None else f"power ~{power:.2f}"
        console.print(
            f"[bold]dataset {name}[/]: PLW {other['plw']}, {other['cells']} cells: {text}", highlight=False
        )
    console.print(f"[bold]effect[/]: {e['source']}", highlight=False, soft_wrap=True)
    width = "-" if r["width_median"] is None else f"{r['width_median']:.3f}"
    console.print(
        f"[bold]power[/] {r['power']:.2f} (± {r['power_se']:.2f}; "
        f"approximation {r['approximate_power']:.2f}) "
        f"to find a significant negative w² at alpha {out['alpha']:g} in {r['n_sims']} simulated studies\n"
        f"critical PLW {e['critical_plw']:.3g}: 95% interval median width {width} (PLW scale, detected "
        f"studies), coverage {r['coverage']:.0%}\n"
        f"smallest curvature detectable with 80% power: {r['mde80']:.3g} on the logit scale "
        f"(assumed: {abs(e['curvature']):.3g})",
        highlight=False,
    )
    for note in out["notes"]:
        console.print(f"[yellow]note[/]: {note}", highlight=False, soft_wrap=True)
    if out["search"]:
        print_search(out["search"])


def print_search(s: dict) -> None:
    table = Table(title=f"cheapest designs reaching power {s['target']:g} (approximation), per seed count")
    for col in ("seeds", "PLW levels", "items per benchmark", "cells", "power", f"cost ({s['cost_unit']})"):
        table.add_column(col)
    for row in s["frontier"]:
        cells = len(row["plw"]) * row["seeds"] * row["models"]
        table.add_row(str(row["seeds"]), str(len(row["plw"])), str(max(row["items"].values())),
                      str(cells), f"{row['power']:.2f}", f"{row['cost']:.0f}")  # fmt: skip
    console.print(table)
    best = s["best"]
    if best is None:
        console.print("[red]no candidate design reaches the target[/]: more seeds or items than searched")
        return
    simulated = s["check"]["power"]
    verdict = "cheapest" if simulated >= s["target"] else "[red]no checked candidate reached it[/]; last"
    console.print(
        f"[bold]{verdict}[/]: {best['seeds']} seed(s), PLW {list(best['plw'])}, items "
        f"{dict(best['items'])}: approximate power {best['power']:.2f}, simulated {simulated:.2f}",
        highlight=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    app.command("power")(power_command)
