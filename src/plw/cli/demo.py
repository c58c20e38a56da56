"""`plw demo`: the offline miniature study, analysis and report in one command."""

from __future__ import annotations

import typer

from plw.cli.console import console, err_console


def demo_command(
    overrides: list[str] | None = typer.Argument(None, help="key=value overrides of the quickstart study"),
    model: str | None = typer.Option(None, "--model", help="any local model directory instead of SmolLM2"),
    data_dir: str | None = typer.Option(
        None, "--data-dir", help="local benchmark files (layout of shared/data/bench): adds ARC-Easy and PIQA"
    ),
) -> None:
    """Train at several PLWs, evaluate, fit the paper's model and write an HTML report."""
    from rich.table import Table

    from plw.experiment.quickstart import run_demo

    result = run_demo(model, data_dir, overrides, console=err_console)
    table = Table(title="quickstart: one fine-tune per PLW")
    columns = ["PLW", "exact match", "KL from base", "val completion loss"]
    for column in columns:
        table.add_column(column, justify="right")
    for row in result["table"]:
        table.add_row(*(_fmt(row.get(c)) for c in columns))
    console.print(table)
    report = result["report"]
    if report is not None:
        pooled = (report["analysis"].get("pooled") or {}) if isinstance(report.get("analysis"), dict) else {}
        # The analysis's own verdict: it words significance and the critical PLW's interval.
        if pooled.get("verdict"):
            console.print(f"analysis: {pooled['verdict']}", highlight=False)
        console.print(f"report: {report['html']}", highlight=False)
    power = result.get("power")
    if power:
        console.print(_power_line(power), highlight=False)
    console.print(
        "A miniature study demonstrates the method on a small model and synthetic data; it does not "
        "confirm or refute the paper's findings. The study that tests them is docs/replication.md."
    )
    failed = [c for c, s in result["states"].items() if s != "done"]
    if failed:
        console.print(f"[red]{len(failed)} cell(s) not done[/]: rerun `plw demo` to resume", highlight=False)
        raise typer.Exit(1)


def _power_line(power: dict) -> str:
    """The design's power, plainly: a miniature study is not expected to detect the effect."""
    text = (
        f"power of this {power['cells']}-cell design to detect a peak at a fractional PLW "
        "(item-level model, approximation): "
    )
    if "replication" in power:
        text += (
            f"{power['replication']:.0%} for the curvature the CPU replication measured "
            f"({power['replication_curvature']:+.2f} on the item logit scale), "
        )
    return text + f"{power['paper']:.0%} for the paper's reported gains; `plw power` simulates and explains"


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3g}" if isinstance(value, float) else str(value)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
