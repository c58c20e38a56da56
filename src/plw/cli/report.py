"""`plw report STUDY [-o OUT] [--backend ...] [--bootstrap N]`."""

from __future__ import annotations

from pathlib import Path

import typer

from plw.cli.console import console


def report(
    study: Path = typer.Argument(..., help="study directory (with results.csv / .parquet) or a results file"),
    out: Path | None = typer.Option(None, "-o", "--out", help="output directory (default: STUDY_DIR/report)"),
    backend: str = typer.Option("statsmodels", "--backend", help="statsmodels | mixedlm | glmmtmb"),
    bootstrap: int = typer.Option(
        200, "--bootstrap", min=0, help="parametric bootstrap replicates (0: none)"
    ),
    seed: int = typer.Option(0, "--seed", help="random seed of the bootstrap"),
    items: Path | None = typer.Option(
        None, "--items", help="per-item results file (default: the one beside the results, if any)"
    ),
) -> None:
    """Write figures, a self-contained report.html, report.md and analysis.json for a study."""
    from plw.report.build import build_report

    paths = build_report(study, out=out, backend=backend, bootstrap=bootstrap, seed=seed, items=items)
    console.print(f"[green]report[/]: {paths['html']}", highlight=False)
    console.print(
        f"summary: {paths['markdown']}  analysis: {paths['json']}  figures: {len(paths['figures'])}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add `report` to the plw app."""
    app.command("report")(report)
