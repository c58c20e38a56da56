"""The Markdown summary (`report.md`), short enough to paste into a paper draft or an issue."""

from __future__ import annotations

from plw.report.tables import Table, all_tables, findings


def md_table(table: Table) -> str:
    """A GitHub-flavoured Markdown table (pipes in cells escaped)."""
    esc = [[c.replace("|", "\\|") for c in row] for row in table.rows]
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in esc]
    return "\n".join(lines)


def _bullets(items: list[str]) -> str:
    return "\n".join(f"- {i}" for i in items) if items else "- none"


def render_markdown(analysis: dict, figures: list[dict], title: str) -> str:
    """The Markdown report.

    Args:
        analysis: from `plw.analysis.summary.analyze_results`.
        figures: dicts with `title` and `png` (a path relative to the report).
        title: the study name.

    Returns:
        The Markdown text.
    """
    parts = [
        f"# PLW study report: {title}",
        f"Results: `{analysis.get('source')}`. Model: beta GLMM (logit link), score ~ w + w² (+ model) "
        f"+ benchmark effect, w = PLW^log10(2); backend `{analysis.get('backend')}`, "
        f"{analysis.get('bootstrap')} bootstrap replicates.",
        "## Findings",
    ]
    parts += [
        f"**{name}.** {f['verdict']}" + (f" Convergence: {f['convergence']}." if f.get("convergence") else "")
        for name, f in findings(analysis).items()
    ] or ["No scored tasks."]
    for table in all_tables(analysis):
        if table.title.startswith("Relative aggregate score per cell"):
            continue  # long; it is in the HTML report and analysis.json
        parts += [f"## {table.title}", md_table(table)] + ([f"_{table.note}_"] if table.note else [])
    parts += ["## Could not estimate", _bullets(analysis.get("not_estimable") or [])]
    parts += ["## Warnings", _bullets(analysis.get("warnings") or [])]
    if figures:
        parts.append("## Figures")
        parts += [f"![{f['title']}]({f['png']})" for f in figures]
    return "\n\n".join(parts) + "\n"
