"""Power of the item-level model (plw.analysis.item_glmm) by simulating and fitting whole studies.

The item-level analysis fits every answer: a binomial GLMM

    logit P(correct_ic) = b0 + b1 w + b2 w^2 + benchmark_b + u_item + v_cell (+ v_seed)
    u ~ N(0, item_sd^2), v_cell ~ N(0, cell_sd^2), v_seed ~ N(0, seed_sd^2), w = PLW ** log10(2)

A simulated study draws the item effects once (a real study scores every cell on the same items),
a cell effect per cell and a seed effect per (model, seed), and one 0/1 answer per cell and item; it
is fitted with the analysis's own `fit_items`. Over many studies:

    power     P(w^2 significant at alpha and negative)  -- the paper's claim has a direction
    width     median width of the critical-PLW 95% interval (PLW scale), over detected studies
    coverage  P(the 95% interval of w^2 contains the true curvature)

`plw.analysis.item_power_approx` gives the same power without simulation (a Rasch information
argument); `plw.analysis.item_pilot` reads an effect from a pilot's per-item data.
"""

from __future__ import annotations

import math
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from plw.analysis.fit import critical
from plw.analysis.item_scale import item_curvature, item_logit
from plw.analysis.power import Design
from plw.analysis.results import CELL_COLUMNS
from plw.analysis.transform import expit, plw_to_w, w_to_plw

ItemDesign = Design
"""The item-level model needs the same description as the aggregate one: PLW levels, seeds, models
and items per benchmark (now the same items in every cell), and the per-cell cost the search uses."""

DEFAULT_ITEM_SD = 20.0
"""Items' spread in difficulty (logits) when no pilot says. Fine-tuned variants of one base model agree
on almost every item: in the committed pilots (docs/replication.md) two cells at adjacent PLW levels
answer 3-9% of items differently, and `fit_items` estimates item sds of 14-22. A spread of 2 would
have them disagree on 29%; 20 reproduces the pilots' 3%."""
DEFAULT_CELL_SD = 0.25
"""A cell's shift in ability (item logits) beyond its PLW curve: training noise. At item_sd 20 it moves
a benchmark's score by about 0.45 points (one sd): twice what the GPU pilot measured (cell sd 0.12 from
3 degrees of freedom), as a default should not promise more than one small pilot showed."""
DEFAULT_SEED_SD = 0.0
"""A seed's shared shift over its cells; none is assumed unless a pilot with several seeds measures it."""
FIT_SECONDS, ROW_SECONDS = 0.05, 1.7e-4
"""`fit_items`' time per fit and per answer (cell x item), measured on the 2-core VM with 144 to
240,000 answers (0.08 s for 144, 0.6 s for 3,000, 40 s for 240,000): what `budgeted_item_power` plans with."""


@dataclass(frozen=True)
class ItemEffect:
    """The assumed truth of the item-level model: the curve and the variance components (logits).

    Attributes:
        curvature: a in a (w - vertex_w)^2 on the item logit scale; negative is a peak.
        vertex_w: the peak on the w scale (0.652 is PLW 0.242).
        logits: each benchmark's logit of the typical item (u = 0) at the peak; others `default_logit`.
        default_logit: see `logits`.
        item_sd, cell_sd, seed_sd: standard deviations of u_item, v_cell, v_seed.
        source: where these numbers come from (printed with the result).
        discordance: a pilot's check, {observed, implied} share of items adjacent PLW levels answer
            differently (plw.analysis.item_pilot); None for assumed effects.
    """

    curvature: float
    vertex_w: float = 0.652
    logits: dict[str, float] = field(default_factory=dict)
    default_logit: float = 0.0
    item_sd: float = DEFAULT_ITEM_SD
    cell_sd: float = DEFAULT_CELL_SD
    seed_sd: float = DEFAULT_SEED_SD
    source: str = ""
    discordance: dict | None = None

    @property
    def critical_plw(self) -> float:
        return float(w_to_plw(min(max(self.vertex_w, 0.0), 1.0)))

    def logit(self, benchmark: str) -> float:
        return self.logits.get(benchmark, self.default_logit)


PAPER_SCORE_CURVATURE, PAPER_SCORE_LOGIT = -0.2, 0.781
"""The paper's reported multiple-choice gains on the logit scale of scores: about 2 points from PLW 0 to
the peak (docs/replication.md), at the paper's fitted level 0.781 (a score of 0.686)."""


def paper_item_effect(item_sd: float = DEFAULT_ITEM_SD, cell_sd: float = DEFAULT_CELL_SD) -> ItemEffect:
    """The paper's peak and reported gains on the item logit scale of an item spread `item_sd`."""
    level = item_logit(PAPER_SCORE_LOGIT, item_sd)
    curvature = item_curvature(PAPER_SCORE_CURVATURE, level, item_sd)
    return ItemEffect(
        curvature=curvature,
        vertex_w=0.652,
        default_logit=level,
        item_sd=item_sd,
        cell_sd=cell_sd,
        source=(
            f"the paper's peak (PLW 0.242) and reported multiple-choice gains, about 2 points from PLW 0 "
            f"(curvature {PAPER_SCORE_CURVATURE:g} on the logit scale of scores at a score of 0.686, "
            f"docs/replication.md): {curvature:+.3g} on the item logit scale at item sd {item_sd:g}; cell sd "
            f"{cell_sd:g} (defaults, no pilot)"
        ),
    )


PAPER_ITEM_EFFECT = paper_item_effect()
"""`--effect paper` for the item-level model (the aggregate model keeps plw.analysis.power.PAPER_EFFECT)."""


def cell_layout(design: ItemDesign) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cells in (model, seed, PLW) order: plw [C], w [C], model index [C], unit [C] (model x seed)."""
    models, seeds, plw = np.meshgrid(
        np.arange(design.models), np.arange(design.seeds), np.asarray(design.plw, dtype=float), indexing="ij"
    )
    plw = plw.reshape(-1)
    return plw, plw_to_w(plw), models.reshape(-1), (models * design.seeds + seeds).reshape(-1)


def cell_table(design: ItemDesign) -> pd.DataFrame:
    """One row per cell of one dataset, in `cell_layout` order: cell, model, seed (text), plw, w, unit."""
    plw, w, model, unit = cell_layout(design)
    seed = unit - model * design.seeds
    return pd.DataFrame(
        {
            "cell": [f"plw={p:g},model=m{m},seed={s}" for p, m, s in zip(plw, model, seed, strict=True)],
            "model": [f"m{m}" for m in model],
            "seed": [str(s) for s in seed],
            "plw": plw,
            "unit": unit,
            "w": w,
        }
    )


def simulate_items(design: ItemDesign, effect: ItemEffect, rng: np.random.Generator) -> pd.DataFrame:
    """One simulated study's answers, shaped as `fit_items` takes them.

    Returns:
        [cells x items] rows: cell, model, dataset, plw, seed, regularizer, benchmark, item, metric,
        value (0/1); the same items (and item effects) in every cell.
    """
    cells = cell_table(design)
    bench = np.repeat(list(design.items), list(design.items.values()))  # [I] benchmark of each item
    item_ids = np.concatenate([[f"{b}#{i}" for i in range(n)] for b, n in design.items.items()])
    base = np.array([effect.logit(b) for b in bench]) + rng.normal(0.0, effect.item_sd, len(bench))  # [I]
    shift = effect.curvature * (cells["w"].to_numpy() - effect.vertex_w) ** 2  # [C]
    shift = shift + rng.normal(0.0, effect.cell_sd, len(cells))
    shift = shift + rng.normal(0.0, effect.seed_sd, design.models * design.seeds)[cells["unit"].to_numpy()]
    value = rng.random((len(cells), len(bench))) < expit(shift[:, None] + base[None, :])  # [C, I]
    n_cells, n_items = value.shape
    frame = cells.loc[np.repeat(np.arange(n_cells), n_items), ["cell", "model", "seed", "plw"]]
    frame = frame.reset_index(drop=True)
    frame["dataset"], frame["regularizer"], frame["metric"] = "sim", "none", "acc"
    frame["benchmark"] = np.tile(bench, n_cells)
    frame["item"] = np.tile(item_ids, n_cells)
    frame["value"] = value.reshape(-1).astype(float)
    return frame[[*CELL_COLUMNS[1:], "benchmark", "item", "metric", "value"]]


def analyse_items(frame: pd.DataFrame, effect: ItemEffect, alpha: float) -> dict:
    """Fit one simulated study with `fit_items` and keep what power needs.

    Returns:
        {detected, b2, se, covers_b2 (95% interval of w^2 holds the truth), width (critical PLW)}.
    """
    from plw.analysis.item_glmm import fit_items

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_items(frame, family="binomial", label="pooled", lr_test=False)
    b2, se, p = float(fit.params["w2"]), float(fit.bse["w2"]), float(fit.pvalues["w2"])
    q = interval_quantile(fit)
    crit = critical(fit, (float(frame["plw"].min()), float(frame["plw"].max())))
    ci = crit["critical_plw_ci_delta"]
    return {
        "detected": bool(math.isfinite(p) and p < alpha and b2 < 0),
        "b2": b2,
        "se": se,
        "covers_b2": bool(abs(b2 - effect.curvature) <= q * se),
        "width": (ci[1] - ci[0]) if ci else math.nan,
    }


def interval_quantile(fit) -> float:
    """The 97.5% quantile of the fit's own test of w^2: t with the cell-level df (`fit_items` tests the
    cell-level terms so), the normal when a fit reports no df; NaN with no df left."""
    from scipy import stats

    df = fit.extra.get("df_cell")
    if df is None:
        return float(stats.norm.ppf(0.975))
    return float(stats.t.ppf(0.975, df)) if df > 0 else math.nan


def _batch(args: tuple) -> list[dict]:
    design, effect, alpha, streams = args
    return [
        analyse_items(simulate_items(design, effect, np.random.default_rng(s)), effect, alpha)
        for s in streams
    ]


def _run(design, effect, alpha: float, streams: list, workers: int) -> list[dict]:
    """Fit the studies of `streams` (one SeedSequence each) in `workers` processes, in stream order."""
    chunks = [(design, effect, alpha, streams[i::workers]) for i in range(max(workers, 1))]
    if workers <= 1 or len(streams) < 2:
        return _batch((design, effect, alpha, streams))
    with ProcessPoolExecutor(workers) as pool:
        parts = list(pool.map(_batch, chunks))
    return [parts[i % workers][i // workers] for i in range(len(streams))]


def simulate_item_power(
    design: ItemDesign,
    effect: ItemEffect,
    n_sims: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
    workers: int = 1,
) -> dict:
    """Simulate `n_sims` studies of `design` under `effect` and fit each with `fit_items`.

    Args:
        workers: processes (fits are independent).

    Returns:
        {power, power_se, width_median, coverage_b2, se_b2_median, n_sims, method: "simulated"}.
    """
    streams = np.random.SeedSequence(seed).spawn(n_sims)
    return summarise(_run(design, effect, alpha, streams, workers))


def fit_seconds(design: ItemDesign) -> float:
    """Predicted seconds of one `fit_items` fit of `design` (FIT_SECONDS + ROW_SECONDS per answer)."""
    return FIT_SECONDS + ROW_SECONDS * design.cells * sum(design.items.values())


def budgeted_item_power(
    design: ItemDesign, effect: ItemEffect, *, budget_s: float = 20.0, min_sims: int = 100, **sim: Any
) -> dict | None:
    """`simulate_item_power` with as many of `n_sims` studies as `budget_s` seconds allow by
    `fit_seconds`; None when fewer than `min_sims` would fit.

    Args:
        sim: `simulate_item_power`'s keywords (n_sims, alpha, seed, workers).

    The count is predicted, not timed, so the same command gives the same figure on any machine.
    """
    n_sims = sim.pop("n_sims", 200)
    n = min(n_sims, int(budget_s * max(sim.get("workers", 1), 1) / fit_seconds(design)))
    if n < min_sims:
        return None
    return simulate_item_power(design, effect, n_sims=n, **sim)


def summarise(runs: list[dict]) -> dict:
    """Power and its Monte Carlo error, interval width and coverage over the fitted studies."""
    table = pd.DataFrame(runs)
    n_sims = len(table)
    power = float(table["detected"].mean())
    detected = table.loc[table["detected"], "width"].dropna()
    return {
        "power": power,
        "power_se": math.sqrt(power * (1 - power) / n_sims),
        "width_median": float(detected.median()) if len(detected) else None,
        "coverage_b2": float(table["covers_b2"].mean()),
        "se_b2_median": float(np.nanmedian(table["se"])),
        "n_sims": n_sims,
        "method": "simulated",
    }
