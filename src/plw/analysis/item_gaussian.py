"""Linear mixed model with crossed random intercepts by exact maximum likelihood (lme4 `lmer(REML = FALSE)`).

y = X beta + Z Lambda z + e, z ~ N(0, sigma^2 I), e ~ N(0, sigma^2 I), Lambda = diag(theta of each
level's group), theta = (random sd) / sigma as in lme4. For given theta the penalised least squares
problem

    [[Lambda Z'Z Lambda + I, Lambda Z'X], [X'Z Lambda, X'X]] [z; beta] = [Lambda Z'y; X'y]

is solved exactly, and sigma^2 = pwrss / n profiled out (Bates et al. 2015, eq. 34):

    -2 l(theta) = log det(Lambda Z'Z Lambda + I) + n (1 + log(2 pi pwrss / n)).

The items are eliminated first (their block is diagonal, `item_blocks`), leaving a dense system of
cells + seeds + fixed effects. Every cross-product is computed once, so one evaluation of the profiled
deviance costs O(n_item (m + p)^2) however many rows there are. Covariance of beta: sigma^2 times the
beta block of the inverse of that system (lme4's vcov for lmer).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import minimize

from plw.analysis.item_blocks import Crossed, cross, factor
from plw.analysis.item_laplace import BOUNDARY, SD_MAX, MixedFit, finish


class GaussianProfile:
    """The profiled ML deviance of y [n] on x [n, p] with crossed random intercepts `crossed`."""

    def __init__(self, y: np.ndarray, x: np.ndarray, crossed: Crossed):
        y, x = np.asarray(y, float), np.asarray(x, float)
        c = crossed
        self.c, self.n, self.p = c, len(y), x.shape[1]
        self.cross = cross(c, np.ones(len(y)))
        cols = [c.zt(x[:, j]) for j in range(self.p)]
        self.zx_item = np.column_stack([col[0] for col in cols])  # [n_item, p]
        self.zx_small = np.column_stack([col[1] for col in cols])  # [m, p]
        self.zy_item, self.zy_small = c.zt(y)
        self.xtx, self.xty, self.yty = x.T @ x, x.T @ y, float(y @ y)

    def solve(self, theta: np.ndarray) -> dict:
        """Deviance, beta [p], pwrss and the unscaled covariance [p, p] at relative sds theta."""
        c, m, t_item = self.c, self.c.m, theta[0]
        f = factor(self.cross, c, theta)
        # Items against (small levels, beta): B_ext [n_item, m + p]; the rest's block E [m + p, m + p].
        b_ext = np.hstack([f.b, t_item * self.zx_item])
        e = np.zeros((m + self.p, m + self.p))
        e[:m, :m] = np.eye(m) + f.lam[:, None] * self.cross.ms * f.lam[None, :]
        e[:m, m:] = f.lam[:, None] * self.zx_small
        e[m:, :m] = e[:m, m:].T
        e[m:, m:] = self.xtx
        s_ext = e - b_ext.T @ (b_ext / f.a[:, None])
        rhs_item = t_item * self.zy_item
        rhs_rest = np.concatenate([f.lam * self.zy_small, self.xty])
        chol = cho_factor(s_ext, lower=True)
        sol = cho_solve(chol, rhs_rest - b_ext.T @ (rhs_item / f.a))
        x_item = (rhs_item - b_ext @ sol) / f.a
        pwrss = max(self.yty - rhs_item @ x_item - rhs_rest @ sol, 1e-300)
        dev = f.logdet + self.n * (1.0 + np.log(2 * np.pi * pwrss / self.n))
        unscaled = cho_solve(chol, np.eye(m + self.p))[m:, m:]
        return {"dev": float(dev), "beta": sol[m:], "pwrss": float(pwrss), "unscaled": unscaled}

    def deviance(self, theta: np.ndarray) -> float:
        return self.solve(np.asarray(theta, float))["dev"]


def _minimise(dev, k: int) -> tuple[np.ndarray, bool, int, bool]:
    """L-BFGS-B over theta >= 0; an entry stuck at 0 while the deviance falls away from it restarts at 0.1.

    Returns:
        theta (boundary entries exactly 0), optimizer flag, iterations, and whether every boundary
        entry is a minimum (the deviance even in each theta has zero slope at 0, so L-BFGS-B can
        stop there on a maximum).
    """
    theta, iterations = np.array([1.0] + [0.3] * (k - 1)), 0
    opts = {"maxiter": 500, "ftol": 1e-12, "gtol": 1e-6}
    for _ in range(3):
        res = minimize(dev, theta, jac="3-point", method="L-BFGS-B", bounds=[(0.0, SD_MAX)] * k, options=opts)
        theta, iterations = res.x.copy(), iterations + int(res.nit)
        theta[theta <= BOUNDARY] = 0.0
        at_min = dev(theta)
        stuck = [j for j in np.flatnonzero(theta == 0.0) if dev(_set(theta, j, 1e-3)) < at_min]
        if not stuck:
            break
        theta[stuck] = 0.1
    return theta, bool(res.success), iterations, not stuck


def fit_gaussian(y: np.ndarray, x: np.ndarray, crossed: Crossed) -> MixedFit:
    """Exact ML fit of the Gaussian model; y [n], x [n, p] the fixed-effect design."""
    prof = GaussianProfile(y, x, crossed)
    theta, opt_ok, iterations, boundary_ok = _minimise(prof.deviance, crossed.n_groups)
    free = theta > 0
    out = prof.solve(theta)
    sigma2 = out["pwrss"] / prof.n
    cov = sigma2 * out["unscaled"]
    grad = _central_grad(prof.deviance, theta, free)
    info = {
        "optimizer_ok": opt_ok,
        "iterations": iterations,
        "max_grad": float(np.abs(grad).max(initial=0.0)) / (2 * prof.n),
        "hess_ok": bool(np.all(np.isfinite(cov)) and np.linalg.eigvalsh(cov).min() > 0),
        "sd_free": free,
        "boundary_ok": boundary_ok,
    }
    sigma = float(np.sqrt(sigma2))
    return finish(out["beta"], theta * sigma, cov, -0.5 * out["dev"], info, residual_sd=sigma)


def _set(theta: np.ndarray, j: int, value: float) -> np.ndarray:
    out = theta.copy()
    out[j] = value
    return out


def _central_grad(fun, theta: np.ndarray, free: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """d fun / d theta_j for the free coordinates (the others sit on the boundary)."""
    return np.array(
        [
            (fun(_set(theta, j, theta[j] + h)) - fun(_set(theta, j, theta[j] - h))) / (2 * h)
            for j in np.flatnonzero(free)
        ]
    )
