"""The report's tables, built once from the analysis dict and rendered as Markdown and HTML.

A table is (title, columns, rows) with display strings; numbers are written so that the HTML
table's sort can parse them (plain or scientific notation).
"""

from __future__ import annotations

from dataclasses import dataclass

from plw.analysis.mechanisms import LABELS
from plw.analysis.verdict import fmt_ci


@dataclass
class Table:
    """A titled table of display strings."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


def num(v, digits: int = 4) -> str:
    """A number with `digits` significant digits; blank for None."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    return f"{v:.{digits}g}"


def fits(analysis: dict) -> dict[str, dict]:
    """The fits to report: each dataset, then the pooled fit when there are several datasets."""
    out = dict(analysis.get("datasets") or {})
    if len(out) > 1 and analysis.get("pooled"):
        out["pooled"] = analysis["pooled"]
    return out


def glmm_table(analysis: dict) -> Table:
    """One row per fit: the quadratic test and the critical PLW."""
    rows = []
    for name, f in fits(analysis).items():
        q = f.get("quadratic") or {}
        ci = f.get("critical_plw_ci")
        rows.append(
            [
                name,
                num(f["n_obs"]),
                num(len(f["plw_levels"])),
                num(len(f["benchmarks"])),
                num(q.get("estimate")),
                num(q.get("std_error")),
                num(q.get("p_value"), 3),
                num(q.get("lr_p_value"), 3),
                num(f.get("critical_plw"), 3),
                fmt_ci(ci) + (f" ({f['critical_plw_ci_method']})" if ci else ""),
                {True: "yes", False: "NO", None: "-"}[f.get("converged")],
            ]
        )
    cols = [
        "fit",
        "n",
        "PLW levels",
        "benchmarks",
        "w² coef",
        "SE",
        "p (Wald)",
        "p (LR)",
        "critical PLW",
        "95% CI",
        "converged",
    ]
    return Table(
        "GLMM: quadratic term and critical PLW",
        cols,
        rows,
        f"Backend {analysis.get('backend')}; coefficients on the logit scale; w = PLW^log10(2).",
    )


def coefficient_table(analysis: dict) -> Table:
    """Every fixed effect of every fit."""
    rows = []
    for name, f in fits(analysis).items():
        for term, c in (f.get("coefficients") or {}).items():
            rows.append(
                [name, term, num(c["estimate"]), num(c["std_error"]), num(c["z"]), num(c["p_value"], 3)]
            )
    return Table("Fixed effects", ["fit", "term", "estimate", "SE", "z", "p"], rows)


def regularizer_table(analysis: dict) -> Table:
    """Tuned PLW against each regulariser at PLW 0 and 1."""
    rows = [
        [
            r["dataset"],
            r["model"],
            r["condition"],
            num(r["plw"], 3),
            num(r["relative_score"], 3),
            num(r["difference"], 3),
            num(r["n_seeds"]),
        ]
        for r in analysis.get("regularizers") or []
    ]
    cols = ["dataset", "model", "condition", "PLW", "relative score", "minus tuned PLW", "seeds"]
    return Table("Regularisers against a tuned PLW (relative aggregate score)", cols, rows)


def mechanism_table(analysis: dict) -> Table:
    """Spearman trend of each mechanism measure with PLW."""
    rows = [
        [
            t["dataset"],
            t["model"],
            LABELS.get(t["measure"], t["measure"]),
            num(t["spearman_rho"], 3),
            num(t["p_value"], 3),
            num(t["plw_at_min"], 3),
            num(t["plw_at_max"], 3),
            num(t["n_levels"]),
        ]
        for t in (analysis.get("mechanisms") or {}).get("trends") or []
    ]
    cols = ["dataset", "model", "measure", "Spearman rho", "p", "PLW at min", "PLW at max", "PLW levels"]
    return Table("Mechanism measures against PLW", cols, rows)


def relative_table(analysis: dict) -> Table:
    """The relative aggregate score of every cell."""
    rows = [
        [
            r["dataset"],
            r["model"],
            num(r["plw"], 4),
            r["regularizer"],
            str(r["seed"]),
            num(r["relative_score"], 3),
            num(r["n_benchmarks"]),
        ]
        for r in analysis.get("relative_scores") or []
    ]
    cols = ["dataset", "model", "PLW", "regularizer", "seed", "relative score", "benchmarks"]
    return Table("Relative aggregate score per cell", cols, rows)


def all_tables(analysis: dict) -> list[Table]:
    """Every table of the report, in order (empty ones dropped)."""
    tables = [
        glmm_table(analysis),
        coefficient_table(analysis),
        regularizer_table(analysis),
        mechanism_table(analysis),
        relative_table(analysis),
    ]
    return [t for t in tables if t.rows]
