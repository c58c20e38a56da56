"""Linear algebra of crossed random intercepts: one large group (items) and a few small ones (cells, seeds).

In the item-level models of `plw.analysis.item_glmm` every row is one item answered by one cell
(a trained model), so the random-effects Hessian H = Lambda Z' W Z Lambda + I has the block form

    [[diag(A), B ],      A [n_item]     items never share a row with another item: diagonal
     [B',      D ]]      D [m, m]       cells + seeds, m <= ~110 levels: small and dense

Every solve and log-determinant goes through the Schur complement S = D - B' diag(A)^-1 B (m x m), so
a fit costs O(n_rows) for the weighted sums plus O(n_item m^2) for S; nothing of size q x q is
ever formed. Lambda = diag(sd of each level's group); a standard deviation may be 0 (the boundary):
nothing here divides by one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve


@dataclass
class Crossed:
    """Which level of each random-effect group every row belongs to."""

    item: np.ndarray
    """[n] item code of each row, in 0..n_item-1."""
    small: list[np.ndarray]
    """[n] code of each row in each small group (cell, then seed when fitted)."""
    n_item: int
    n_small: list[int]

    def __post_init__(self):
        self.m = int(sum(self.n_small))
        self.offsets = np.cumsum([0] + list(self.n_small))[:-1].astype(int)
        # Column of each row's level in the stacked small block, and item x level bins for bincount.
        self.cols = [code + off for code, off in zip(self.small, self.offsets, strict=True)]
        self.item_bins = [self.item * self.m + col for col in self.cols]

    @property
    def n_groups(self) -> int:
        return 1 + len(self.small)

    def lam_small(self, sd: np.ndarray) -> np.ndarray:
        """[m] the sd of each small level's group, from sd = [item, small groups...]."""
        return np.repeat(np.asarray(sd[1:], dtype=float), self.n_small)

    def zt(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Z' x for a row vector x [n]: per-item sums [n_item] and per-level sums [m]."""
        small = np.concatenate([np.bincount(c, x, n) for c, n in zip(self.small, self.n_small, strict=True)])
        return np.bincount(self.item, x, self.n_item), small

    def zl(self, sd: np.ndarray, v_item: np.ndarray, v_small: np.ndarray) -> np.ndarray:
        """Z Lambda v [n]: each row's sum of its levels' entries of v, scaled by their group's sd."""
        out = sd[0] * v_item[self.item]
        for g, col in enumerate(self.cols):
            out = out + sd[g + 1] * v_small[col]
        return out

    def group_sums(self, v_item: np.ndarray, v_small: np.ndarray) -> np.ndarray:
        """[n_groups] the sum of a per-level vector within each group."""
        return np.concatenate([[v_item.sum()], np.add.reduceat(v_small, self.offsets)])


@dataclass
class Cross:
    """Z' W Z in blocks, for row weights W."""

    d: np.ndarray
    """[n_item] summed weight of each item."""
    nis: np.ndarray
    """[n_item, m] summed weight of each item x small level."""
    ms: np.ndarray
    """[m, m] summed weight of each pair of small levels."""


def cross(crossed: Crossed, w: np.ndarray) -> Cross:
    """Z' diag(w) Z of the design, from row weights w [n]."""
    c, m = crossed, crossed.m
    nis = np.zeros((c.n_item, m))
    for bins in c.item_bins:
        # Each group's columns are disjoint, so adding the flat bincounts fills its own block.
        nis += np.bincount(bins, w, c.n_item * m).reshape(c.n_item, m)
    ms = np.zeros((m, m))
    for ca in c.cols:
        for cb in c.cols:
            ms += np.bincount(ca * m + cb, w, m * m).reshape(m, m)
    return Cross(np.bincount(c.item, w, c.n_item), nis, ms)


@dataclass
class Factor:
    """H = Lambda Z'WZ Lambda + I, factored through its Schur complement."""

    sd: np.ndarray
    """[n_groups] the sds it was built with (item first)."""
    lam: np.ndarray
    """[m] sd of each small level."""
    a: np.ndarray
    """[n_item] the diagonal item block, 1 + sd_item^2 d."""
    bt: np.ndarray
    """[n_item, m] B / sd_item (B without the item sd, so nothing divides by it)."""
    k: np.ndarray
    """[m, m] (S - I) without the small sds: S = I + diag(lam) k diag(lam)."""
    chol: tuple
    logdet: float
    """log det H."""
    cross: Cross

    @property
    def b(self) -> np.ndarray:
        return self.sd[0] * self.bt

    def solve(self, r_item: np.ndarray, r_small: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """H^-1 r for r = (r_item [n_item(, k)], r_small [m(, k)]), by block elimination."""
        a = self.a if r_item.ndim == 1 else self.a[:, None]
        b = self.b
        x_small = cho_solve(self.chol, r_small - b.T @ (r_item / a))
        return (r_item - b @ x_small) / a, x_small


def factor(cross_: Cross, crossed: Crossed, sd: np.ndarray) -> Factor:
    """Factor H for group sds sd = [item, small groups...] (entries may be 0)."""
    sd = np.asarray(sd, dtype=float)
    lam = crossed.lam_small(sd)
    a = 1.0 + sd[0] ** 2 * cross_.d
    bt = cross_.nis * lam
    k = cross_.ms - sd[0] ** 2 * (cross_.nis.T @ (cross_.nis / a[:, None]))
    s = np.eye(crossed.m) + lam[:, None] * k * lam[None, :]
    chol = cho_factor(s, lower=True)
    logdet = float(np.sum(np.log(a)) + 2.0 * np.sum(np.log(np.diag(chol[0]))))
    return Factor(sd, lam, a, bt, k, chol, logdet, cross_)


def leverage(f: Factor, crossed: Crossed) -> np.ndarray:
    """[n] h_i = (Z Lambda H^-1 Lambda Z')_ii, each row's share of the random-effect curvature.

    Row i touches item a and one level per small group, so h_i needs H^-1 only at the item's
    diagonal, the item x small entries and the small x small entries: all from G = B S^-1.
    """
    s_item = f.sd[0]
    gt = cho_solve(f.chol, f.bt.T).T  # [n_item, m] G / sd_item
    a = f.a[crossed.item]
    gb = np.einsum("ij,ij->i", gt, f.bt)[crossed.item]
    h = s_item**2 / a + s_item**4 * gb / a**2
    sinv = cho_solve(f.chol, np.eye(crossed.m))
    for g, col in enumerate(crossed.cols):
        h -= 2.0 * s_item**2 * f.sd[g + 1] * gt[crossed.item, col] / a
        for g2, col2 in enumerate(crossed.cols):
            h += f.sd[g + 1] * f.sd[g2 + 1] * sinv[col, col2]
    return h


def scaled_traces(f: Factor, crossed: Crossed) -> np.ndarray:
    """[n_groups] tr_g(I - H^-1) / sd_g: the direct part of d log det H / d sd_g, halved.

    Written without dividing by sd_g, so it is finite (and 0) on the boundary sd_g = 0.
    """
    s_item = f.sd[0]
    gt = cho_solve(f.chol, f.bt.T).T
    gb = np.einsum("ij,ij->i", gt, f.bt)
    item = s_item * np.sum(f.cross.d / f.a - gb / f.a**2)
    q = cho_solve(f.chol, f.lam[:, None] * f.k)
    small = np.add.reduceat(np.diag(q), crossed.offsets)
    return np.concatenate([[item], small])
