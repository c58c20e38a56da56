"""The self-contained HTML report: figures embedded as base64 PNG, sortable tables, no external files.

A few lines of inline JavaScript sort a table when its header is clicked, and mark each figure
`data-loaded="1"` once the browser has decoded it (the headless-browser test reads that back).
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

from plw.report.tables import Table, all_tables, findings, glmm_table

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
th { background: #f2f2f2; cursor: pointer; user-select: none; }
th[data-dir="asc"]::after { content: " \\25B2"; } th[data-dir="desc"]::after { content: " \\25BC"; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; border: 1px solid #eee; }
.verdict { background: #f7f7fb; border-left: 4px solid #557; padding: 0.5em 1em; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
"""

SCRIPT = """
document.querySelectorAll("table.sortable th").forEach(th => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0], i = th.cellIndex;
  const asc = th.dataset.dir !== "asc";
  th.closest("tr").querySelectorAll("th").forEach(h => delete h.dataset.dir);
  th.dataset.dir = asc ? "asc" : "desc";
  const key = r => r.cells[i].textContent.trim();
  const rows = Array.from(body.rows).sort((a, b) => {
    const x = key(a), y = key(b), nx = Number(x), ny = Number(y);
    const c = (x !== "" && y !== "" && !isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
    return asc ? c : -c;
  });
  rows.forEach(r => body.appendChild(r));
}));
function markLoaded(img) { if (img.complete && img.naturalWidth > 0) img.dataset.loaded = "1"; }
document.querySelectorAll("figure img").forEach(img => {
  markLoaded(img); img.addEventListener("load", () => markLoaded(img));
});
"""


def html_table(table: Table) -> str:
    """A sortable HTML table."""
    head = "".join(f"<th>{escape(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in row) + "</tr>" for row in table.rows)
    note = f"<p><em>{escape(table.note)}</em></p>" if table.note else ""
    return (
        f'<h2>{escape(table.title)}</h2>{note}<table class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def html_figure(fig: dict) -> str:
    """An embedded figure (base64 PNG) with its caption."""
    data = base64.b64encode(Path(fig["png_path"]).read_bytes()).decode("ascii")
    return (
        f'<figure id="fig-{escape(fig["name"])}"><img alt="{escape(fig["title"])}" '
        f'src="data:image/png;base64,{data}"><figcaption>{escape(fig["title"])}</figcaption></figure>'
    )


def _list(title: str, items: list[str]) -> str:
    lis = "".join(f"<li>{escape(i)}</li>" for i in items) or "<li>none</li>"
    return f"<h2>{escape(title)}</h2><ul>{lis}</ul>"


def render_html(
    analysis: dict, figures: list[dict], title: str, config_text: str | None, versions: dict
) -> str:
    """The whole report as one HTML document.

    Args:
        analysis: from `plw.analysis.summary.analyze_results`.
        figures: dicts with `name`, `title` and `png_path` (read and embedded).
        title: the study name.
        config_text: the study's study.yaml, shown verbatim, or None.
        versions: software name -> version.
    """
    verdicts = (
        "".join(
            f'<p class="verdict"><strong>{escape(n)}.</strong> {escape(f["verdict"])}'
            + (f"<br><small>Convergence: {escape(f['convergence'])}</small>" if f.get("convergence") else "")
            + "</p>"
            for n, f in findings(analysis).items()
        )
        or "<p>No scored tasks.</p>"
    )
    glmm = glmm_table(analysis)
    rest = [html_table(t) for t in all_tables(analysis) if t.title != glmm.title]
    parts = [
        f"<h1>PLW study report: {escape(title)}</h1>",
        f"<p>Results: <code>{escape(str(analysis.get('source')))}</code>; backend "
        f"<code>{escape(str(analysis.get('backend')))}</code>; {analysis.get('bootstrap')} bootstrap "
        "replicates. Model: beta GLMM (logit link), score ~ w + w&sup2; (+ model) + benchmark effect, "
        "w = PLW<sup>log10 2</sup>.</p>",
        "<h2>Findings</h2>",
        verdicts,
        # The headline table, then the figures, then the detail.
        html_table(glmm) if glmm.rows else "",
        "<h2>Figures</h2>",
        *(html_figure(f) for f in figures),
        *rest,
        _list("Could not estimate", analysis.get("not_estimable") or []),
        _list("Warnings", analysis.get("warnings") or []),
        "<h2>Study configuration</h2>",
        f"<pre>{escape(config_text)}</pre>" if config_text else "<p>No study.yaml found.</p>",
        html_table(
            Table("Software versions", ["software", "version"], [[k, str(v)] for k, v in versions.items()])
        ),
    ]
    body = "\n".join(parts)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)} - PLW report'
        f"</title><style>{STYLE}</style></head>\n<body>\n{body}\n<script>{SCRIPT}</script>\n</body></html>\n"
    )
