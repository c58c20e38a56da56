"""Binomial GLMM with crossed random intercepts, by maximum likelihood with the Laplace approximation.

The model of `plw.analysis.item_glmm`: logit P(y = 1) = X beta + Z Lambda z, z ~ N(0, I), with
Lambda = diag(sd of each level's group). The Laplace log-likelihood, as lme4's `glmer(nAGQ = 1)`
defines it, is

    l(beta, sd) = log p(y | z*) - |z*|^2 / 2 - log det H / 2,    H = Lambda Z' W Z Lambda + I,

with z* the mode of the first two terms (penalised IRLS, the inner problem) and W = mu (1 - mu) at
the mode. The outer problem maximises l over (beta, sd) with L-BFGS-B and an analytic gradient (the
mode's dependence on the parameters enters through the implicit function theorem, see `_grad`),
then polishes with Newton steps on a finite-difference Hessian of that gradient. The sds are
optimised on their own scale with bound 0, like lme4's theta: the likelihood is even in each sd, so
the boundary sd = 0 is reached exactly and needs no special case.

Covariance of beta: as lme4 reports it by default (`vcov(use.hessian = TRUE)`), the beta block of
the inverse of the Hessian of -l over (sd, beta) jointly; sds at the boundary are left out of that
Hessian (their cross terms with beta vanish there by symmetry).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from plw.analysis.glmm import diagnose
from plw.analysis.item_blocks import Crossed, Factor, cross, factor, leverage, scaled_traces

INNER_TOL = 1e-9  # largest Newton step on z at the mode; the outer gradient's error scales with it
MAX_INNER = 60
SD_MAX = 1000.0  # an upper bound for the line searches; item sds of 20-30 occur (near-deterministic items)
BOUNDARY = 1e-6  # an sd below this counts as estimated at 0
FD_STEP = 1e-4


@dataclass
class MixedFit:
    """What an item-level fit returns (both families)."""

    beta: np.ndarray
    """[p] fixed effects."""
    sd: np.ndarray
    """[n_groups] random-intercept sds: item, then cell, then seed when fitted."""
    cov: np.ndarray
    """[p, p] covariance of beta."""
    loglik: float
    converged: bool
    convergence: str
    iterations: int
    messages: list[str] = field(default_factory=list)
    residual_sd: float | None = None
    """Gaussian family only."""


@dataclass
class Mode:
    """The conditional mode of the random effects at (beta, sd), and H factored there."""

    z_item: np.ndarray
    z_small: np.ndarray
    mu: np.ndarray
    f: Factor
    loglik: float


class BinomialLaplace:
    """The Laplace objective -l(beta, sd) and its gradient for 0/1 responses y [n], design x [n, p]."""

    def __init__(self, y: np.ndarray, x: np.ndarray, crossed: Crossed):
        self.y, self.x, self.c = np.asarray(y, float), np.asarray(x, float), crossed
        self.p = self.x.shape[1]
        self._z = (np.zeros(crossed.n_item), np.zeros(crossed.m))  # warm start of the inner problem

    def _phi(self, eta: np.ndarray, zi: np.ndarray, zs: np.ndarray) -> float:
        return float(self.y @ eta - np.logaddexp(0.0, eta).sum() - 0.5 * (zi @ zi + zs @ zs))

    def mode(self, beta: np.ndarray, sd: np.ndarray) -> Mode:
        """Penalised IRLS (damped Newton on z) from the last mode; concave, so it always converges."""
        c, xb = self.c, self.x @ beta
        zi, zs = self._z
        eta = xb + c.zl(sd, zi, zs)
        phi = self._phi(eta, zi, zs)
        for _ in range(MAX_INNER):
            mu = expit(eta)
            f = factor(cross(c, mu * (1 - mu)), c, sd)
            ri, rs = c.zt(self.y - mu)
            di, ds = f.solve(sd[0] * ri - zi, f.lam * rs - zs)
            if max(np.abs(di).max(initial=0), np.abs(ds).max(initial=0)) < INNER_TOL:
                break
            t = 1.0
            while True:  # step halving: Newton on a concave function may overshoot far from the mode
                ni, ns = zi + t * di, zs + t * ds
                eta_new = xb + c.zl(sd, ni, ns)
                phi_new = self._phi(eta_new, ni, ns)
                if phi_new >= phi - 1e-12 * abs(phi) or t < 1e-10:
                    break
                t /= 2
            zi, zs, eta, phi = ni, ns, eta_new, phi_new
        else:
            mu = expit(eta)
            f = factor(cross(c, mu * (1 - mu)), c, sd)
        self._z = (zi, zs)
        return Mode(zi, zs, mu, f, phi - 0.5 * f.logdet)

    def value_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """-l and its gradient [p + n_groups] at theta = (beta, sd)."""
        beta, sd = theta[: self.p], theta[self.p :]
        m = self.mode(beta, sd)
        return -m.loglik, -self._grad(m, sd)

    def _grad(self, m: Mode, sd: np.ndarray) -> np.ndarray:
        """dl/d(beta, sd), total derivative through the mode.

        d l / dt = dphi/dt - tr(H^-1 dH/dt) / 2, and dH/dt holds W' = mu (1 - mu) (1 - 2 mu) times
        d eta / dt, so it needs the leverages h_i and v = H^-1 Lambda Z' u with u = W' h; see the
        module docstring of item_blocks for why each piece is cheap.
        """
        c, f = self.c, m.f
        w = m.mu * (1 - m.mu)
        r = self.y - m.mu
        u = w * (1 - 2 * m.mu) * leverage(f, c)
        ui, us = c.zt(u)
        vi, vs = f.solve(sd[0] * ui, f.lam * us)
        zlv = c.zl(sd, vi, vs)
        g_beta = self.x.T @ (r - 0.5 * u + 0.5 * w * zlv)
        ri, rs = c.zt(r)
        wi, ws = c.zt(w * zlv)
        ti = m.z_item * (ri - 0.5 * ui + 0.5 * wi) - 0.5 * vi * ri
        ts = m.z_small * (rs - 0.5 * us + 0.5 * ws) - 0.5 * vs * rs
        g_sd = c.group_sums(ti, ts) - scaled_traces(f, c)
        return np.concatenate([g_beta, g_sd])


def glm_start(y: np.ndarray, x: np.ndarray, iters: int = 30) -> np.ndarray:
    """[p] logistic regression without random effects by IRLS (a start, so a tiny ridge is harmless)."""
    beta = np.zeros(x.shape[1])
    for _ in range(iters):
        mu = expit(np.clip(x @ beta, -30, 30))
        w = np.maximum(mu * (1 - mu), 1e-10)
        step = np.linalg.solve(x.T @ (w[:, None] * x) + 1e-8 * np.eye(x.shape[1]), x.T @ (y - mu))
        beta = beta + step
        if np.abs(step).max() < 1e-8:
            break
    return beta


def fd_hessian(fun, theta: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Central differences of the gradient fun(theta)[1] over the coordinates `free` (symmetrised)."""
    idx = np.flatnonzero(free)
    hess = np.empty((len(idx), len(idx)))
    for col, j in enumerate(idx):
        h = FD_STEP * max(1.0, abs(theta[j]))
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        hess[:, col] = (fun(up)[1][idx] - fun(down)[1][idx]) / (2 * h)
    return 0.5 * (hess + hess.T)


def _polish(fun, theta: np.ndarray, free: np.ndarray, hess: np.ndarray, steps: int = 4) -> np.ndarray:
    """A few Newton steps on the free coordinates with a fixed Hessian; each kept only if it helps."""
    val, grad = fun(theta)
    for _ in range(steps):
        step = np.zeros_like(theta)
        step[free] = -np.linalg.solve(hess, grad[free])
        trial = theta + step
        trial[~free] = theta[~free]
        t_val, t_grad = fun(trial)
        if not t_val <= val:
            break
        theta, val, grad = trial, t_val, t_grad
    return theta


def _stuck(fun, theta: np.ndarray, p: int) -> np.ndarray:
    """Indices of sds at 0 where the likelihood rises as they leave it (d(-l)/d sd < 0 at sd = 1e-3).

    The likelihood is even in each sd, so its gradient vanishes at 0 and L-BFGS-B, once projected
    onto the bound, stays there even when a small positive sd is better.
    """
    at_zero = p + np.flatnonzero(theta[p:] <= BOUNDARY)
    return np.array([j for j in at_zero if fun(_set(theta, j, 1e-3))[1][j] < 0], dtype=int)


def optimise(fun, theta0: np.ndarray, p: int, n_obs: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Maximise the likelihood over theta = (beta [p], sds): L-BFGS-B, then Newton polish.

    An sd stuck at 0 (`_stuck`) restarts the search from 0.1 (twice at most).

    Returns:
        theta, the Hessian of -l over the free coordinates, and diagnostics (optimizer flag,
        iterations, largest gradient per observation, Hessian check, the free mask).
    """
    k = len(theta0) - p
    bounds = [(None, None)] * p + [(0.0, SD_MAX)] * k
    opts = {"maxiter": 1000, "ftol": 1e-14, "gtol": 1e-7 * n_obs}
    theta, iterations = np.asarray(theta0, float), 0
    for _ in range(3):
        res = minimize(fun, theta, jac=True, method="L-BFGS-B", bounds=bounds, options=opts)
        theta, iterations = res.x, iterations + int(res.nit)
        theta[p:][theta[p:] <= BOUNDARY] = 0.0
        stuck = _stuck(fun, theta, p)
        if not len(stuck):
            break
        theta = theta.copy()
        theta[stuck] = 0.1
    free = np.ones(len(theta), bool)
    free[p:] = theta[p:] > BOUNDARY
    hess = fd_hessian(fun, theta, free)
    hess_ok = bool(np.all(np.isfinite(hess)) and np.linalg.eigvalsh(hess).min() > 0)
    if hess_ok:
        theta = _polish(fun, theta, free, hess)
    grad = fun(theta)[1]
    info = {
        "optimizer_ok": bool(res.success),
        "iterations": iterations,
        "max_grad": float(np.abs(grad[free]).max()) / n_obs,
        "hess_ok": hess_ok,
        "free": free,
        "boundary_ok": not len(stuck),
    }
    return theta, hess, info


def _set(theta: np.ndarray, j: int, value: float) -> np.ndarray:
    out = theta.copy()
    out[j] = value
    return out


def fit_binomial(y: np.ndarray, x: np.ndarray, crossed: Crossed) -> MixedFit:
    """ML (Laplace) fit of the binomial GLMM; y [n] in {0, 1}, x [n, p] the fixed-effect design."""
    prob = BinomialLaplace(y, x, crossed)
    p = x.shape[1]
    theta0 = np.concatenate([glm_start(prob.y, prob.x), [1.0] + [0.3] * (crossed.n_groups - 1)])
    theta, hess, info = optimise(prob.value_grad, theta0, p, len(y))
    cov = np.linalg.inv(hess)[:p, :p] if info["hess_ok"] else np.full((p, p), np.nan)
    info["sd_free"] = info["free"][p:]
    return finish(theta[:p], theta[p:], cov, -prob.value_grad(theta)[0], info)


GROUPS = ("item", "cell", "seed")


def finish(beta, sd, cov, loglik: float, info: dict, residual_sd: float | None = None) -> MixedFit:
    """Assemble a MixedFit with its convergence statement (`glmm.diagnose` plus boundary notes).

    info: optimizer_ok, iterations, max_grad, hess_ok, sd_free (mask of sds off the boundary),
    boundary_ok (the likelihood falls as each boundary sd leaves 0).
    """
    messages = [f"{GROUPS[g]} sd estimated at 0 (boundary)" for g in np.flatnonzero(~info["sd_free"])]
    messages += [
        f"{GROUPS[g]} sd at the search's upper bound {SD_MAX:g}" for g in np.flatnonzero(sd >= SD_MAX)
    ]
    if not info.get("boundary_ok", True):
        messages.append("an sd stopped at 0 although the likelihood rises away from it")
    opt_ok = info["optimizer_ok"] and info.get("boundary_ok", True) and not np.any(sd >= SD_MAX)
    ok, sentence = diagnose(opt_ok, info["iterations"], info["max_grad"], info["hess_ok"], [])
    if messages:
        sentence += "; " + "; ".join(messages)
    return MixedFit(beta, sd, cov, loglik, ok, sentence, info["iterations"], messages, residual_sd)
