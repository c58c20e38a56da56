"""Plain, honest sentences about one fit: what the quadratic test shows and what it does not."""

from __future__ import annotations

ALPHA = 0.05


def fmt_p(p: float | None) -> str:
    """A p-value as people write it: 'p < 0.001' or 'p = 0.086'."""
    if p is None:
        return "p = n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def fmt_ci(ci: list | None) -> str:
    """A PLW interval as '[0.19, 0.23]' (three significant digits), or 'n/a'."""
    if not ci or any(v is None for v in ci):
        return "n/a"
    return f"[{ci[0]:.3g}, {ci[1]:.3g}]"


def verdict(fit: dict) -> str:
    """One paragraph on one fit (a per-dataset or pooled dict from `summary.analyze_fit`).

    Significant means the Wald p-value of the w^2 coefficient is below 0.05. A non-significant
    quadratic is said to be so, and the critical PLW is then called poorly determined.
    """
    quad = fit.get("quadratic")
    if quad is None:
        why = "; ".join(fit.get("not_estimable") or []) or "no quadratic term was fitted"
        linear = (fit.get("coefficients") or {}).get("w")
        tail = (
            f" The linear PLW term is {linear['estimate']:.3g} ({fmt_p(linear['p_value'])})."
            if linear
            else ""
        )
        return f"No test of the quadratic term: {why}.{tail}"
    p = quad["p_value"]
    est = quad["estimate"]
    crit = fit.get("critical_plw")
    ci = fmt_ci(fit.get("critical_plw_ci"))
    if quad["significant"] and quad["negative"]:
        text = (
            f"The quadratic term is negative and significant ({est:.3g}, {fmt_p(p)}): scores peak at an "
            f"interior PLW, so PLW matters here. Critical PLW {crit:.3g}, 95% CI {ci}."
        )
    elif quad["significant"]:
        text = (
            f"The quadratic term is positive and significant ({est:.3g}, {fmt_p(p)}): scores dip at "
            f"intermediate PLW; the vertex (PLW {crit:.3g}) is a minimum, not an optimum."
        )
    else:
        text = (
            f"The quadratic term is not significant ({est:.3g}, {fmt_p(p)}): these data do not show that "
            "PLW matters"
            + (
                f"; the critical PLW ({crit:.3g}, 95% CI {ci}) is poorly determined."
                if crit is not None
                else "."
            )
        )
    if fit.get("clipped"):
        text += " The vertex lies outside [0, 1] on the w scale, so the critical PLW is clipped to the bound."
    if fit.get("converged") is False:
        text += " The fit did not converge cleanly; treat the estimates with caution."
    return text
