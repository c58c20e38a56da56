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
        analysis = report["analysis"] if isinstance(report.get("analysis"), dict) else {}
        for line in _analysis_lines(analysis):
            console.print(line, highlight=False)
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


def _analysis_lines(analysis: dict) -> list[str]:
    """The analysis's own verdicts (item level first, when per-item results exist) and the pooled
    paired differences of every PLW level from PLW 0 and PLW 1."""
    from plw.analysis.item_level import headline

    item = analysis.get("item_level") or {}
    lines = []
    fit = headline(item)
    if fit and fit.get("verdict"):
        lines.append(f"analysis (item level, primary): {fit['verdict']}")
    if (analysis.get("pooled") or {}).get("verdict"):
        lines.append(f"analysis (aggregate): {analysis['pooled']['verdict']}")
    if item.get("error"):
        lines.append(f"item-level analysis not run: {item['error']}")
    rows = [
        r
        for r in (item.get("paired") or {}).get("rows", [])
        if r["benchmark"] == "pooled" and r["diff"] is not None
    ]
    for ref in sorted({r["reference"] for r in rows}):
        parts = [
            f"PLW {r['plw']:g} {r['diff'] * 100:+.1f}"
            + (f" (p {r['p_value']:.2g})" if r["p_value"] is not None else "")
            for r in rows
            if r["reference"] == ref
        ]
        lines.append(f"paired per item, points vs PLW {ref:g} (all benchmarks): " + ", ".join(parts))
    return lines


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
