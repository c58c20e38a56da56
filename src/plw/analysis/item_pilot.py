"""The item-level effect a pilot study measured, and a check of it: how often two cells disagree.

`estimate_from_pilot` fits the pilot's answers with the analysis's `fit_items` and reads the curve,
the benchmarks' levels and the variance components. The check: the share of items two cells at
adjacent PLW levels answer differently (averaged over such pairs), observed in the pilot and implied
by the fitted model. A fitted model that implies much more disagreement than the pilot shows has
too little item spread for these data (and so, for power, too much noise), and vice versa.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd

from plw.analysis.item_power import ItemEffect
from plw.analysis.transform import expit, plw_to_w

_NODES, _WEIGHTS = np.polynomial.hermite.hermgauss(16)


def estimate_from_pilot(items_frame: pd.DataFrame, label: str = "pilot") -> ItemEffect:
    """Fit a pilot's per-item answers with `fit_items` and return the effect it measured.

    Args:
        items_frame: `fit_items`'s input (cell, model, dataset, plw, seed, regularizer, benchmark,
            item, metric, value 0/1), unregularised cells.
        label: names the pilot in the effect's `source`.

    Returns:
        The fitted curvature and vertex (clipped to [0, 1]), each benchmark's logit at the vertex,
        item_sd, cell_sd, seed_sd, and `discordance` {observed, implied}.
    """
    from plw.analysis.item_glmm import fit_items

    fit = fit_items(items_frame, family="binomial", label="pooled", lr_test=False)
    b0, b1, b2 = (float(fit.params[k]) for k in ("Intercept", "w", "w2"))
    w0 = min(max(-b1 / (2 * b2), 0.0), 1.0) if b2 != 0 else 0.5
    peak = b0 + b1 * w0 + b2 * w0**2
    sds = variance_sds(fit.extra)
    effect = ItemEffect(
        curvature=b2,
        vertex_w=w0,
        logits={b: peak + off for b, off in fit.benchmark_offsets.items()},
        default_logit=peak,
        **sds,
    )
    observed = observed_discordance(items_frame)
    implied = implied_discordance(effect, items_frame)
    source = (
        f"pilot {label}: fitted {b2:+.3f} (w - {w0:.3f})^2 on the item logit scale, item sd "
        f"{sds['item_sd']:.2f}, cell sd {sds['cell_sd']:.2f}, seed sd {sds['seed_sd']:.2f}; adjacent PLW "
        f"levels answer {observed:.1%} of items differently, the fitted model implies {implied:.1%}"
    )
    return replace(effect, source=source, discordance={"observed": observed, "implied": implied})


def binary_items(items: pd.DataFrame) -> pd.DataFrame:
    """A study's per-item table (plw.analysis.items) as `fit_items` takes it: each benchmark's primary
    metric where it is 0/1, the rows the item-level analysis fits (plw.analysis.item_level)."""
    from plw.analysis.item_level import benchmark_items, primary_outcomes

    binary, _, _ = primary_outcomes(benchmark_items(items))
    return binary.assign(seed=binary["seed"].astype(str), plw=binary["plw"].astype(float))


def variance_sds(extra: dict) -> dict[str, float]:
    """{item_sd, cell_sd, seed_sd} from a `fit_items` fit's `extra` (None, a term not fitted: 0)."""
    return {name: float(extra.get(name) or 0.0) for name in ("item_sd", "cell_sd", "seed_sd")}


def adjacent_pairs(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """(cell, cell) at adjacent PLW levels within each (dataset, model, seed)."""
    cells = frame[["cell", "dataset", "model", "seed", "plw"]].drop_duplicates("cell")
    pairs = []
    for _, group in cells.groupby(["dataset", "model", "seed"], sort=True):
        ordered = group.sort_values("plw")["cell"].tolist()
        pairs += list(zip(ordered[:-1], ordered[1:], strict=True))
    return pairs


def observed_discordance(frame: pd.DataFrame) -> float:
    """Share of items answered differently by two cells at adjacent PLW levels, averaged over pairs."""
    answers = frame.pivot_table(index=["benchmark", "item"], columns="cell", values="value", aggfunc="first")
    shares = []
    for a, b in adjacent_pairs(frame):
        both = answers[[a, b]].dropna()
        if len(both):
            shares.append(float((both[a] != both[b]).mean()))
    return float(np.mean(shares)) if shares else math.nan


def implied_discordance(effect: ItemEffect, frame: pd.DataFrame) -> float:
    """The model's expected `observed_discordance` for the pilot's levels and items.

    Two cells share their items and seed (t = logit_b + u + v_seed ~ N(logit_b, item_sd^2 +
    seed_sd^2)) and draw their own cell effects; the disagreement p1 (1 - p2) + p2 (1 - p1) is
    integrated over all three (the shared part on a logit grid when it is wide, as pilots find it;
    Gauss-Hermite for the cell effects), per benchmark, weighted by its items.
    """
    from plw.analysis.item_scale import normal_points

    items = frame.drop_duplicates(["benchmark", "item"]).groupby("benchmark").size()
    levels = {c: p for c, p in zip(frame["cell"], frame["plw"], strict=False)}
    z = math.sqrt(2.0) * _NODES
    v1, v2 = effect.cell_sd * z[None, :, None], effect.cell_sd * z[None, None, :]  # [1, K, 1], [1, 1, K]
    pair_weight = (_WEIGHTS[:, None] * _WEIGHTS[None, :]) / math.pi  # [K, K]
    shares = []
    for a, b in adjacent_pairs(frame):
        f1, f2 = (effect.curvature * (plw_to_w(levels[c]) - effect.vertex_w) ** 2 for c in (a, b))
        per_bench = []
        for bench in items.index:
            t, weight = normal_points(effect.logit(bench), math.hypot(effect.item_sd, effect.seed_sd))  # [T]
            p1, p2 = expit(t[:, None, None] + f1 + v1), expit(t[:, None, None] + f2 + v2)  # [T, K, K]
            disagree = p1 * (1 - p2) + p2 * (1 - p1)
            per_bench.append(float(np.einsum("t,tjk,jk->", weight, disagree, pair_weight)))
        shares.append(float(np.average(per_bench, weights=items.to_numpy())))
    return float(np.mean(shares)) if shares else math.nan
