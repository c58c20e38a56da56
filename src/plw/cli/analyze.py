"""`plw analyze STUDY [--json] [--backend statsmodels|mixedlm|glmmtmb] [--bootstrap N]`."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from plw.cli.console import console, err_console
from plw.cli.options import Backend, Bootstrap, BootstrapSeed, ItemsFile, StudyResults


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


def _item_fit_table(analysis: dict) -> Table:
    """The item-level fits, compact (every column is in --json and the report)."""
    from plw.analysis.verdict import fmt_ci
    from plw.report.item_tables import item_fits
    from plw.report.tables import num

    table = Table(title="Item-level fits (primary: 0/1 outcomes)", caption="w² on the model's scale")
    for col in ("outcome: fit", "items", "w² (SE)", "p", "critical PLW [95% CI]", "item / cell sd"):
        table.add_column(col)
    for label, f in item_fits(analysis["item_level"]).items():
        q, vc = f.get("quadratic") or {}, f.get("variance_components") or {}
        coef = f"{num(q['estimate'], 3)} ({num(q['std_error'], 2)})" if q else "-"
        crit = f"{num(f.get('critical_plw'), 3)} {fmt_ci(f.get('critical_plw_ci'))}" if q else "-"
        sds = f"{num(vc.get('item_sd'), 3)} / {num(vc.get('cell_sd'), 3)}"
        table.add_row(label, num(f.get("n_items")), coef, num(q.get("p_value"), 3) or "-", crit, sds)
    return table


def _paired_table(analysis: dict) -> Table:
    """Paired differences per benchmark and pooled, compact: one row per level and reference."""
    paired = analysis["item_level"].get("paired") or {"rows": []}
    several = len({r["dataset"] for r in paired["rows"]}) > 1
    caption = "SE clustered by item; unpaired SE for contrast; p: exact McNemar or sign flip"
    table = Table(title="Paired per-item differences (level - reference)", caption=caption)
    for col in (["dataset"] if several else []) + [
        "benchmark",
        "PLW",
        "vs",
        "diff [95% CI]",
        "SE / unpaired",
        "p",
    ]:
        table.add_column(col)
    for r in paired["rows"]:
        if r["diff"] is None:
            continue
        ci = (
            f"{r['diff']:+.4f} [{r['ci'][0]:+.4f}, {r['ci'][1]:+.4f}]"
            if r["ci"][0] is not None
            else f"{r['diff']:+.4f}"
        )
        se = f"{r['se']:.4f} / {r['se_unpaired']:.4f}" if r["se"] is not None else "-"
        p = "-" if r["p_value"] is None else f"{r['p_value']:.2g}"
        row = [r["benchmark"], f"{r['plw']:g}", f"{r['reference']:g}", ci, se, p]
        table.add_row(
            *([r["dataset"]] if several else []), *row, style="bold" if r["benchmark"] == "pooled" else None
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
    from plw.report.item_tables import item_tables
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
    if item_tables(analysis):
        console.print(_item_fit_table(analysis))
        console.print(_paired_table(analysis))
        for note in analysis["item_level"].get("notes") or []:
            console.print(f"[yellow]note[/]: {note}", highlight=False, soft_wrap=True)
    console.print(_fit_table(analysis))
    specs = (interaction_table, surface_table, regularizer_table, mechanism_table)
    for spec in (make(analysis) for make in specs):
        if spec.rows:
            console.print(_simple_table(spec))
    for key, label in (("not_estimable", "could not estimate"), ("warnings", "warning")):
        for item in analysis.get(key) or []:
            console.print(f"[yellow]{label}[/]: {item}", highlight=False, soft_wrap=True)


def analyze(
    study: StudyResults,
    json_out: bool = typer.Option(False, "--json", help="print the full analysis as JSON"),
    backend: Backend = "statsmodels",
    bootstrap: Bootstrap = 200,
    seed: BootstrapSeed = 0,
    items: ItemsFile = None,
) -> None:
    """Fit the PLW GLMM per dataset and pooled; report the quadratic test and the critical PLW.

    With per-item results (a study's items.csv.gz, `<results>-items.csv.gz` beside a results file, or
    --items) the item-level fit and the paired comparisons come first, the aggregate fit beside them.
    Per-item results that cannot be compared across cells: the aggregate analysis is printed, then one
    line naming the cell and benchmark, exit code 2.
    """
    from plw.analysis.summary import analyze_study

    analysis = analyze_study(study, backend=backend, bootstrap=bootstrap, seed=seed, items=items)
    if json_out:
        typer.echo(json.dumps(analysis, indent=2, allow_nan=False))
    else:
        print_analysis(analysis)
    error = (analysis.get("item_level") or {}).get("error")
    if error:
        err_console.print(f"[red]error[/]: item-level analysis not run: {error}", highlight=False)
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Add `analyze` to the plw app."""
    app.command("analyze")(analyze)
