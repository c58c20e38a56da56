"""The item-level analysis (`analysis["item_level"]`) as report tables, shared by `plw analyze`'s
terminal output, the Markdown and the HTML report."""

from __future__ import annotations

from plw.analysis.paired import COLUMNS as PAIRED_COLUMNS
from plw.analysis.paired import paired_text_rows
from plw.analysis.verdict import fmt_ci
from plw.report.tables import Table, num

FIT_COLUMNS = ["outcome", "fit", "cells", "items", "w² (SE)", "p", "critical PLW", "95% CI",
               "item sd", "cell sd", "converged"]  # fmt: skip


def item_fits(section: dict) -> dict[str, dict]:
    """{"<outcome>: <fit>": fit} for the binary (primary) fits, then the secondary ones."""
    out = {f"primary (0/1): {name}": fit for name, fit in (section.get("fits") or {}).items()}
    for metric, per in ((section.get("secondary") or {}).get("fits") or {}).items():
        out.update({f"secondary {metric}: {name}": fit for name, fit in per.items()})
    return out


def _fit_row(label: str, f: dict) -> list[str]:
    q = f.get("quadratic") or {}
    vc = f.get("variance_components") or {}
    outcome, _, name = label.partition(": ")
    coef = f"{num(q['estimate'], 3)} ({num(q['std_error'], 2)})" if q else "-"
    p = num(q.get("p_value"), 3) or "-"
    return [outcome, name, num(f.get("n_cells")), num(f.get("n_items")), coef, p,
            num(f.get("critical_plw"), 3) or "-", fmt_ci(f.get("critical_plw_ci")),
            num(vc.get("item_sd"), 3), num(vc.get("cell_sd"), 3), num(f.get("converged"))]  # fmt: skip


def item_fit_table(analysis: dict) -> Table:
    """One row per item-level fit: the quadratic test, the critical PLW and the variance components."""
    section = analysis.get("item_level") or {}
    rows = [_fit_row(label, f) for label, f in item_fits(section).items()]
    note = (
        "Item-level GLMM: logit P(correct) ~ w + w² + benchmark + (1 | item) + (1 | cell) (+ (1 | seed)) on "
        "each benchmark's 0/1 score; secondary: Gaussian with the same random effects. w² on the "
        "model's scale; p uses a t reference with the cell-level residual df."
    )
    return Table("Item-level fits (primary when per-item results exist)", FIT_COLUMNS, rows, note)


def paired_table(analysis: dict) -> Table:
    """Every PLW level against PLW 0 and PLW 1, per benchmark and pooled, on the primary outcomes."""
    paired = (analysis.get("item_level") or {}).get("paired") or {"rows": []}
    note = " ".join(paired.get("notes") or [])
    return Table("Paired per-item comparisons", list(PAIRED_COLUMNS), paired_text_rows(paired), note)


def item_tables(analysis: dict) -> list[Table]:
    """The item-level tables with rows (none when the analysis has no item level)."""
    if not (analysis.get("item_level") or {}).get("fits") and not (analysis.get("item_level") or {}).get(
        "paired"
    ):
        return []
    return [t for t in (item_fit_table(analysis), paired_table(analysis)) if t.rows]


def item_verdicts(analysis: dict) -> dict[str, str]:
    """{fit label: verdict} of the primary item-level fits."""
    fits = (analysis.get("item_level") or {}).get("fits") or {}
    return {f"item-level {name}": fit["verdict"] for name, fit in fits.items()}
