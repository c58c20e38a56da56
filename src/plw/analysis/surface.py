"""PLW x completion weight: a quadratic surface over both weights, and where it peaks.

When a study varies `train.completion_loss_weight` (c, in [0, 1]) as well as PLW, the beta regression
(logit link, as the default backend; model, other extra factors and benchmark sum-coded)

    logit E[score] = b0 + b1 w + b2 w^2 + g1 c + g2 c^2 + b12 w c

is fitted on the unregularised cells, with w = PLW ** log10(2) as in the one-dimensional analysis.
Its stationary point solves H (w, c) = -(b1, g1) with H = [[2 b2, b12], [b12, 2 g2]]: a maximum when
H is negative definite, else a minimum or a saddle. The optimum reported is the highest point of the
surface on the square [0, 1]^2: the stationary point when it is an interior maximum, else the best
point of the boundary (found on a grid), and then the surface has no interior maximum, which the
verdict says. Its 95% interval comes from coefficient draws: (b1, b2, g1, g2, b12) drawn from their
estimated normal distribution, the optimum on the square found for each draw, and the 2.5% / 97.5%
quantiles of each coordinate taken (PLW mapped back from w).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from plw.analysis.interaction import beta_fit, nuisance, usable_rows
from plw.analysis.transform import expit, w_to_plw

COMPLETION = "train.completion_loss_weight"
"""The results column of the completion weight when a study varies it."""
TERMS = ("w", "w2", "c", "c2", "wc")
GRID = 101
DRAWS = 1000


def _values(coefs: np.ndarray, w: np.ndarray, c: np.ndarray) -> np.ndarray:
    """b1 w + b2 w^2 + g1 c + g2 c^2 + b12 w c: coefficients [draws, 5], points w, c -> [draws, points]."""
    basis = np.stack([w, w**2, c, c**2, w * c])  # [5, points]
    return coefs @ basis


def stationary_point(coefs: np.ndarray) -> tuple[np.ndarray | None, str]:
    """The (w, c) where the quadratic's gradient vanishes and its kind (maximum, minimum, saddle, none)."""
    b1, b2, g1, g2, b12 = coefs
    hess = np.array([[2 * b2, b12], [b12, 2 * g2]])
    if abs(np.linalg.det(hess)) < 1e-12:
        return None, "none"
    point = -np.linalg.solve(hess, np.array([b1, g1]))
    eig = np.linalg.eigvalsh(hess)
    kind = "maximum" if np.all(eig < 0) else ("minimum" if np.all(eig > 0) else "saddle")
    return point, kind


def best_on_square(coefs: np.ndarray) -> np.ndarray:
    """Argmax over [0, 1]^2 of the quadratic for each coefficient row [draws, 5] -> [draws, 2] (w, c)."""
    axis = np.linspace(0.0, 1.0, GRID)
    ww, cc = (a.ravel() for a in np.meshgrid(axis, axis, indexing="ij"))
    out = []
    for chunk in np.array_split(coefs, max(1, len(coefs) // 100)):  # bounded memory: 100 x GRID^2
        best = np.argmax(_values(chunk, ww, cc), axis=1)
        out.append(np.column_stack([ww[best], cc[best]]))
    return np.vstack(out)


def optimum(coefs: np.ndarray) -> tuple[np.ndarray, bool]:
    """The highest point on [0, 1]^2 and whether it is an interior maximum (the stationary point)."""
    point, kind = stationary_point(coefs)
    if kind == "maximum" and point is not None and np.all((point >= 0) & (point <= 1)):
        return point, True
    return best_on_square(coefs[None, :])[0], False


def surface(scores: pd.DataFrame, label: str, draws: int = DRAWS, seed: int = 0) -> dict:
    """Fit the quadratic surface over PLW and the completion weight and locate its optimum.

    Args:
        scores: scores of one dataset with a `train.completion_loss_weight` column.
        label: the dataset name, for messages.
        draws: coefficient draws for the optimum's interval.
        seed: random seed of the draws.

    Returns:
        {label, n_obs, coefficients, stationary_point, kind, interior_maximum, optimum, optimum_ci,
        share_interior, grid, converged, convergence, verdict, warnings, not_estimable}.
    """
    rows = usable_rows(scores, [COMPLETION])
    out = {"label": label, "n_obs": int(len(rows)), "coefficients": None, "optimum": None, "warnings": [],
           "not_estimable": []}  # fmt: skip
    rows[COMPLETION] = pd.to_numeric(rows[COMPLETION], errors="coerce")
    n_plw, n_c = rows["plw"].nunique(), rows[COMPLETION].nunique()
    if n_plw < 3 or n_c < 3:
        out["not_estimable"].append(
            f"{n_plw} PLW and {n_c} completion-weight level(s); a quadratic in both needs at least 3 of each"
        )
        out["verdict"] = f"No surface: {out['not_estimable'][0]}."
        return out
    c = rows[COMPLETION].astype(float)
    terms = pd.DataFrame({"Intercept": 1.0, "w": rows["w"], "w2": rows["w"] ** 2, "c": c, "c2": c**2,
                          "wc": rows["w"] * c}, index=rows.index)  # fmt: skip
    x = pd.concat([terms, nuisance(rows, skip=(COMPLETION,))], axis=1)
    if len(rows) <= x.shape[1] + 1:
        out["not_estimable"].append(f"{len(rows)} scores for {x.shape[1] + 1} parameters")
        out["verdict"] = f"No surface: {out['not_estimable'][0]}."
        return out
    fit = beta_fit(rows["y"].to_numpy(), x)
    coefs = fit.params[list(TERMS)].to_numpy()
    cov = fit.cov.loc[list(TERMS), list(TERMS)].to_numpy()
    point, kind = stationary_point(coefs)
    best, interior = optimum(coefs)
    sample = np.random.default_rng(seed).multivariate_normal(coefs, cov, size=draws, method="eigh")
    spots = best_on_square(sample)
    lo, hi = np.quantile(spots, [0.025, 0.975], axis=0)
    shares = [stationary_point(s) for s in sample]
    share_interior = float(np.mean([k == "maximum" and np.all((p >= 0) & (p <= 1)) for p, k in shares]))
    se = np.sqrt(np.clip(np.diag(fit.cov.to_numpy()), 0, None))
    out.update(
        coefficients={n: {"estimate": float(fit.params[n]), "std_error": float(s)}
                      for n, s in zip(fit.params.index, se, strict=True) if n in ("Intercept", *TERMS)},
        stationary_point=None if point is None else {"w": float(point[0]), COMPLETION: float(point[1])},
        kind=kind,
        interior_maximum=interior,
        optimum={"w": float(best[0]), "plw": float(w_to_plw(best[0])), COMPLETION: float(best[1])},
        optimum_ci={"plw": [float(w_to_plw(lo[0])), float(w_to_plw(hi[0]))],
                    COMPLETION: [float(lo[1]), float(hi[1])]},
        optimum_ci_method=f"{draws} coefficient draws",
        share_interior=share_interior,
        grid=_grid(fit.params["Intercept"], coefs),
        converged=fit.converged,
        convergence=fit.convergence,
    )  # fmt: skip
    if not fit.converged:
        out["warnings"].append(f"the fit did not converge cleanly: {fit.convergence}")
    out["verdict"] = verdict(out)
    return out


def _grid(intercept: float, coefs: np.ndarray, n: int = 21) -> dict:
    """The fitted score of the average benchmark on an n x n grid of (w, c), for the report figure."""
    axis = np.linspace(0.0, 1.0, n)
    ww, cc = np.meshgrid(axis, axis, indexing="ij")
    fitted = expit(intercept + _values(coefs[None, :], ww.ravel(), cc.ravel())[0]).reshape(n, n)
    return {"w": axis.tolist(), "c": axis.tolist(), "fit": fitted.tolist()}


def _kind_text(kind: str) -> str:
    if kind == "maximum":
        return "its maximum lies outside [0, 1]^2"
    return "it is flat in some direction" if kind == "none" else f"its stationary point is a {kind}"


def verdict(result: dict) -> str:
    """Where the surface peaks, with its interval, and whether it has an interior maximum."""
    best, ci = result["optimum"], result["optimum_ci"]
    where = (
        f"PLW {best['plw']:.3g} (95% CI [{ci['plw'][0]:.3g}, {ci['plw'][1]:.3g}]) and completion weight "
        f"{best[COMPLETION]:.3g} (95% CI [{ci[COMPLETION][0]:.3g}, {ci[COMPLETION][1]:.3g}])"
    )
    if result["interior_maximum"]:
        text = f"The fitted surface has an interior maximum at {where}."
    else:
        text = (
            f"The fitted surface has no interior maximum ({_kind_text(result['kind'])}); its highest point "
            f"on [0, 1]^2 is on the boundary, at {where}."
        )
    text += f" {result['share_interior']:.0%} of coefficient draws have an interior maximum."
    if result.get("converged") is False:
        text += " The fit did not converge cleanly; treat the estimates with caution."
    return text
