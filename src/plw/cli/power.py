"""`plw power STUDY.yaml [--effect paper|CURVATURE|PILOT_DIR] [--sims N] [--search]`.

Prints the item-level model's power first (the primary analysis: every study is scored per item),
then the aggregate model's; each figure says whether it is simulated or the approximation.
"""

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
    item_budget: float = typer.Option(
        20.0,
        "--item-budget",
        min=0.0,
        help="seconds of item-level fits to simulate with (else the approximation)",
    ),
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
        item_budget_s=item_budget,
    )
    if json_out:
        typer.echo(json.dumps(out, indent=2, default=float))
        return
    print_power(out)


def print_power(out: dict) -> None:
    """The design, then per model (item-level first) the assumed effect and the result, for a person."""
    d = out["design"]
    items = ", ".join(f"{b} {n}" for b, n in d["items"].items())
    console.print(
        f"[bold]design[/] of dataset {out['dataset']} (each dataset is fitted on its own): {len(d['plw'])} "
        f"PLW levels x {d['seeds']} seed(s) x {d['models']} model(s) = {d['cells_per_dataset']} cells; "
        f"items per benchmark: {items}",
        highlight=False,
    )
    if out.get("item", {}).get("note"):
        console.print(f"[bold]item-level model[/]: {out['item']['note']}", highlight=False)
    elif out.get("item"):
        print_item(out["item"], out["alpha"])
    print_aggregate(out)
    for note in out["notes"]:
        console.print(f"[yellow]note[/]: {note}", highlight=False, soft_wrap=True)
    if out.get("item", {}).get("search"):
        print_search(out["item"]["search"], "item-level model")
    if out["search"]:
        print_search(out["search"], "aggregate model")


def _others(others: dict) -> None:
    for name, other in others.items():
        power = other["approximate_power"]
        text = "no quadratic test (fewer than 3 PLW levels)" if power is None else f"power ~{power:.2f}"
        console.print(
            f"  dataset {name}: PLW {other['plw']}, {other['cells']} cells: {text}", highlight=False
        )


def print_item(item: dict, alpha: float) -> None:
    """The item-level model: power (simulated or the approximation, labelled), interval, mde."""
    e, r = item["effect"], item["result"]
    console.print(
        "[bold]item-level model[/] (primary: every answer; binomial GLMM with item and cell effects) on "
        f"the benchmarks scored 0/1 per item: {', '.join(item['benchmarks'])}",
        highlight=False,
    )
    console.print(f"  effect: {e['source']}", highlight=False, soft_wrap=True)
    other = f"; approximation {r['approximate_power']:.2f}" if r["n_sims"] else ""
    error = f" ± {r['power_se']:.2f}," if r["n_sims"] else ","
    test = f"t test, {r['df']} df" if r["df"] > 0 else "no test: no cell-level df left"
    lines = [
        f"  [bold]power {r['power']:.2f}[/]{error} {r['label']}{other}, to find a significant negative w² at "
        f"alpha {alpha:g} ({test})"
    ]
    if r["n_sims"]:
        width = "-" if r["width_median"] is None else f"{r['width_median']:.3f}"
        lines.append(
            f"  critical PLW {e['critical_plw']:.3g}: 95% interval median width {width} (PLW scale, detected "
            f"studies); the w² interval covers the truth in {r['coverage_b2']:.0%}"
        )
    mde = "none up to 64" if r["mde80"] is None else f"{r['mde80']:.3g}"
    lines.append(
        f"  smallest curvature detectable with 80% power: {mde} on the item logit scale "
        f"(approximation; assumed: {abs(e['curvature']):.3g})"
    )
    console.print("\n".join(lines), highlight=False)
    _others(item["others"])


def print_aggregate(out: dict) -> None:
    """The aggregate model (one score per cell and benchmark): simulated power and the approximation."""
    e, r = out["effect"], out["result"]
    console.print("[bold]aggregate model[/] (one score per cell and benchmark; beta regression)")
    console.print(f"  effect: {e['source']}", highlight=False, soft_wrap=True)
    width = "-" if r["width_median"] is None else f"{r['width_median']:.3f}"
    console.print(
        f"  [bold]power {r['power']:.2f}[/] ± {r['power_se']:.2f}, {r['label']}; approximation "
        f"{r['approximate_power']:.2f}, to find a significant negative w² at alpha {out['alpha']:g}\n"
        f"  critical PLW {e['critical_plw']:.3g}: 95% interval median width {width} (PLW scale, detected "
        f"studies), coverage {r['coverage']:.0%}\n"
        f"  smallest curvature detectable with 80% power: {r['mde80']:.3g} on the logit scale of scores "
        f"(assumed: {abs(e['curvature']):.3g})",
        highlight=False,
    )
    _others(out["others"])


def print_search(s: dict, model: str) -> None:
    title = f"{model}: cheapest designs reaching power {s['target']:g} (approximation), per seed count"
    table = Table(title=title)
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
    check = s["check"]
    label = check.get("label", "simulated")
    checked = (
        "not simulated (its fits exceed --item-budget)"
        if label == "approximation"
        else f"{label}: {check['power']:.2f}"
    )
    verdict = "cheapest" if check["power"] >= s["target"] else "[red]no checked candidate reached it[/]; last"
    console.print(
        f"[bold]{verdict}[/] ({model}): {best['seeds']} seed(s), PLW {list(best['plw'])}, items "
        f"{dict(best['items'])}: approximate power {best['power']:.2f}, {checked}",
        highlight=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    app.command("power")(power_command)
