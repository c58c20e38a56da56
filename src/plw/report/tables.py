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


def findings(analysis: dict) -> dict[str, dict]:
    """Every fit with a verdict: the item-level fits (primary when present), the aggregate one-curve
    fits, then PLW x extra factor and the surface."""
    item_fits = ((analysis.get("item_level") or {}).get("fits")) or {}
    out = {f"item-level {name}": fit for name, fit in item_fits.items()}
    aggregate = "aggregate " if out else ""
    out.update({f"{aggregate}{name}": fit for name, fit in fits(analysis).items()})
    for factor, per in (analysis.get("interactions") or {}).items():
        out.update({f"{d}: PLW x {factor}": r for d, r in per.items()})
    out.update({f"{d}: PLW x completion weight": r for d, r in (analysis.get("surface") or {}).items()})
    return out


def interaction_table(analysis: dict) -> Table:
    """Per extra factor, dataset and level: the level's curvature, critical PLW and the curves test."""
    rows = []
    for factor, per in (analysis.get("interactions") or {}).items():
        for dataset, r in per.items():
            test = r.get("test") or {}
            for level, f in (r.get("per_level") or {}).items():
                q = f.get("quadratic") or {}
                rows.append([factor, dataset, level, num(q.get("estimate")), num(q.get("p_value"), 3),
                             num(f.get("critical_plw"), 3), fmt_ci(f.get("critical_plw_ci")),
                             num(test.get("lr_p_value"), 3), num(test.get("wald_p_value"), 3)])  # fmt: skip
    cols = ["factor", "dataset", "level", "w² coef", "p", "critical PLW", "95% CI (delta)",
            "curves differ: p (LR)", "p (Wald)"]  # fmt: skip
    return Table("PLW x extra factor: curve per level", cols, rows,
                 "Beta regression with PLW's w and w² terms per level; the test compares it with one "
                 "common curve (df = 2 x (levels - 1)).")  # fmt: skip


def surface_table(analysis: dict) -> Table:
    """Per dataset: the optimum of the PLW x completion-weight surface and its interval."""
    rows = []
    for dataset, r in (analysis.get("surface") or {}).items():
        best, ci = r.get("optimum"), r.get("optimum_ci") or {}
        if best is None:
            continue
        c = "train.completion_loss_weight"
        rows.append(
            [dataset, num(best["plw"], 3), fmt_ci(ci.get("plw")), num(best[c], 3), fmt_ci(ci.get(c)),
             num(r.get("interior_maximum")), r.get("kind") or "", num(r.get("share_interior"), 2)]
        )  # fmt: skip
    cols = ["dataset", "optimum PLW", "95% CI", "optimum completion weight", "95% CI", "interior maximum",
            "stationary point", "share of draws interior"]  # fmt: skip
    note = "Highest point of the fitted surface on [0, 1]^2; intervals from coefficient draws."
    return Table("PLW x completion weight: quadratic surface", cols, rows, note)


def all_tables(analysis: dict) -> list[Table]:
    """Every table of the report, in order (empty ones dropped)."""
    from plw.report.item_tables import item_tables  # it builds on this module's Table

    tables = [
        *item_tables(analysis),
        glmm_table(analysis),
        interaction_table(analysis),
        surface_table(analysis),
        coefficient_table(analysis),
        regularizer_table(analysis),
        mechanism_table(analysis),
        relative_table(analysis),
    ]
    return [t for t in tables if t.rows]
