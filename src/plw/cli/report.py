"""`plw report STUDY [-o OUT] [--backend ...] [--bootstrap N]`."""

from __future__ import annotations

from pathlib import Path

import typer

from plw.cli.console import console
from plw.cli.options import Backend, Bootstrap, BootstrapSeed, ItemsFile, StudyResults


def report(
    study: StudyResults,
    out: Path | None = typer.Option(None, "-o", "--out", help="output directory (default: STUDY_DIR/report)"),
    backend: Backend = "statsmodels",
    bootstrap: Bootstrap = 200,
    seed: BootstrapSeed = 0,
    items: ItemsFile = None,
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
