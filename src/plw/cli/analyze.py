"""`plw analyze STUDY [--json] [--backend statsmodels|mixedlm|glmmtmb] [--bootstrap N]`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from plw.cli.console import console


def _fit_table(analysis: dict) -> Table:
    """A compact table of the headline numbers, one row per fit (full detail is in --json)."""
    from plw.analysis.verdict import fmt_ci
    from plw.report.tables import fits, num

    table = Table(title="Quadratic term and critical PLW", caption="w² on the logit scale; w = PLW^log10(2)")
    for col in ("fit", "n", "w² (SE)", "p", "critical PLW", "95% CI", "converged"):
        table.add_column(col, no_wrap=col in ("fit", "p"))
    for name, f in fits(analysis).items():
        q = f.get("quadratic") or {}
        coef = f"{num(q['estimate'], 3)} ({num(q['std_error'], 2)})" if q else "-"
        ci = f"{fmt_ci(f.get('critical_plw_ci'))} {f.get('critical_plw_ci_method') or ''}".strip()
        conv = {True: "yes", False: "[red]NO[/]", None: "-"}[f.get("converged")]
        table.add_row(
            name,
            num(f["n_obs"]),
            coef,
            num(q.get("p_value"), 3) or "-",
            num(f.get("critical_plw"), 3) or "-",
            ci,
            conv,
        )
    return table


def _simple_table(spec) -> Table:
    table = Table(title=spec.title)
    for col in spec.columns:
        table.add_column(col, overflow="fold")
    for row in spec.rows:
        table.add_row(*row)
    return table


def print_analysis(analysis: dict) -> None:
    """Print the analysis for a person: verdicts, rich tables, and what could not be estimated."""
    from plw.report.tables import (
        findings,
        interaction_table,
        mechanism_table,
        regularizer_table,
        surface_table,
    )

    console.print(
        f"[bold]results[/]: {analysis.get('source')}  [bold]backend[/]: {analysis.get('backend')}  "
        f"[bold]bootstrap[/]: {analysis.get('bootstrap')}",
        highlight=False,
    )
    for name, fit in findings(analysis).items():
        console.print(f"[bold]{name}[/]: {fit['verdict']}", highlight=False)
        if fit.get("convergence"):
            console.print(f"  convergence: {fit['convergence']}", highlight=False, style="dim")
    console.print(_fit_table(analysis))
    specs = (interaction_table, surface_table, regularizer_table, mechanism_table)
    for spec in (make(analysis) for make in specs):
        if spec.rows:
            console.print(_simple_table(spec))
    for key, label in (("not_estimable", "could not estimate"), ("warnings", "warning")):
        for item in analysis.get(key) or []:
            console.print(f"[yellow]{label}[/]: {item}", highlight=False, soft_wrap=True)


def analyze(
    study: Path = typer.Argument(..., help="study directory (with results.csv / .parquet) or a results file"),
    json_out: bool = typer.Option(False, "--json", help="print the full analysis as JSON"),
    backend: str = typer.Option("statsmodels", "--backend", help="statsmodels | mixedlm | glmmtmb"),
    bootstrap: int = typer.Option(
        200, "--bootstrap", min=0, help="parametric bootstrap replicates (0: none)"
    ),
    seed: int = typer.Option(0, "--seed", help="random seed of the bootstrap"),
) -> None:
    """Fit the PLW GLMM per dataset and pooled; report the quadratic test and the critical PLW."""
    from plw.analysis.summary import analyze_study

    analysis = analyze_study(study, backend=backend, bootstrap=bootstrap, seed=seed)
    if json_out:
        typer.echo(json.dumps(analysis, indent=2, allow_nan=False))
    else:
        print_analysis(analysis)


def register(app: typer.Typer) -> None:
    """Add `analyze` to the plw app."""
    app.command("analyze")(analyze)
