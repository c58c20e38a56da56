"""Select, code and check the rows of one item-level fit (`plw.analysis.item_glmm`).

An item frame has one row per cell x benchmark x item: the outcome `value` of one item answered by
one trained model. The rows kept, the fixed-effect design and what cannot be estimated follow
`plw.analysis.design.prepare` (regularizer `none`, missing values left out and reported, sum-coded
nuisance factors named `benchmark[...]`, `model[...]`, `dataset[...]`), so the two fits' coefficients
line up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from plw.analysis.design import FitLevels, sum_code
from plw.analysis.item_blocks import Crossed
from plw.analysis.transform import plw_to_w

REQUIRED = ("cell", "plw", "benchmark", "item", "value")
DEFAULTS = {"model": "default", "dataset": "default", "seed": "0", "regularizer": "none", "metric": ""}
FAMILIES = ("binomial", "gaussian")


@dataclass
class ItemData(FitLevels):
    """The rows, design and random-effect structure of one item-level fit."""

    label: str
    family: str
    frame: pd.DataFrame
    """The rows used: the item frame's columns plus w."""
    exog: pd.DataFrame
    """[n, p0] Intercept, w, [w2], model[..], dataset[..]: the cell-level fixed effects."""
    benchmark_exog: pd.DataFrame
    """[n, n_benchmarks - 1] sum-coded benchmark columns."""
    crossed: Crossed | None
    quadratic: bool
    n_seeds: int
    warnings: list[str] = field(default_factory=list)
    not_estimable: list[str] = field(default_factory=list)

    @property
    def fittable(self) -> bool:
        return not any(m.startswith("PLW effect") for m in self.not_estimable)

    @property
    def y(self) -> np.ndarray:
        return self.frame["value"].to_numpy(dtype=float)

    @property
    def n_cells(self) -> int:
        return int(self.frame["cell"].nunique())

    @property
    def cell_terms(self) -> list[str]:
        """Fixed effects constant within a cell: identified by the cells, not by the items."""
        return list(self.exog.columns)

    @property
    def df_cell(self) -> int:
        """Cells beyond the cell-level fixed effects: the t reference's degrees of freedom."""
        return self.n_cells - len(self.cell_terms)


def _clean(frame: pd.DataFrame, family: str, warnings: list[str], not_estimable: list[str]) -> pd.DataFrame:
    """Rows of regularizer `none` with a numeric value, minus benchmarks whose value never varies."""
    f = frame.assign(**{k: v for k, v in DEFAULTS.items() if k not in frame})
    f = f[f["regularizer"].astype(str) == "none"].copy()
    for col in ("cell", "model", "dataset", "seed", "benchmark", "item"):
        f[col] = f[col].astype(str)
    f["value"] = pd.to_numeric(f["value"], errors="coerce")
    missing = f["value"].isna()
    if missing.any():
        warnings.append(f"{int(missing.sum())} missing or non-numeric value(s) left out")
    f = f[~missing]
    if family == "binomial" and len(f) and not f["value"].isin([0.0, 1.0]).all():
        not_estimable.append(
            "PLW effect: the binomial family needs 0/1 values "
            "(fit a continuous outcome with family='gaussian')"
        )
    dup = f.duplicated(["cell", "benchmark", "item"]).sum()
    if dup:
        warnings.append(f"{int(dup)} repeated cell x benchmark x item row(s), each fitted as a response")
    spread = f.groupby("benchmark")["value"].nunique()
    const = sorted(spread.index[spread == 1])
    if const and len(const) < len(spread):
        # A benchmark answered identically by every model and item has an infinite (binomial) or
        # degenerate effect; it carries no information about PLW.
        warnings.append(f"benchmark(s) {', '.join(const)} have the same value in every row; left out")
        f = f[~f["benchmark"].isin(const)]
    return f


def prepare_items(frame: pd.DataFrame, family: str = "binomial", label: str = "pooled") -> ItemData:
    """The ItemData of one fit; `not_estimable` names what the data cannot support and why.

    Raises:
        ValueError: an unknown family or a missing required column (the caller's contract, not data).
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
    absent = [c for c in REQUIRED if c not in frame]
    if absent:
        raise ValueError(f"item frame lacks column(s) {', '.join(absent)}")
    warnings: list[str] = []
    not_estimable: list[str] = []
    f = _clean(frame, family, warnings, not_estimable)
    f["w"] = plw_to_w(f["plw"].to_numpy(dtype=float))
    levels = sorted(f["plw"].unique())
    if not len(f):
        not_estimable.append("PLW effect: no usable rows (regularizer 'none', non-missing value)")
    elif len(levels) < 2:
        not_estimable.append(f"PLW effect: only one PLW level ({levels[0]:g})")
    elif f["value"].nunique() == 1:
        not_estimable.append(f"PLW effect: the outcome is constant ({f['value'].iloc[0]:g} in every row)")
    quadratic = len(levels) >= 3
    if len(levels) == 2:
        not_estimable.append(
            "quadratic term and critical PLW: only 2 PLW levels (need at least 3); linear fit only"
        )
    if f["benchmark"].nunique() == 1:
        not_estimable.append(
            f"benchmark effect: only one benchmark ({f['benchmark'].iloc[0]}); fitted without it"
        )
    _warn_constant_items(f, warnings)
    exog = pd.DataFrame({"Intercept": 1.0, "w": f["w"]}, index=f.index)
    if quadratic:
        exog["w2"] = f["w"] ** 2
    exog = pd.concat([exog, sum_code(f["model"], "model"), sum_code(f["dataset"], "dataset")], axis=1)
    n_seeds = int(f["seed"].nunique())
    bench = sum_code(f["benchmark"], "benchmark")
    data = ItemData(label, family, f, exog, bench, None, quadratic, n_seeds, warnings, not_estimable)
    if data.fittable:
        data.crossed = _crossed(f, n_seeds)
        if data.df_cell <= 0:
            not_estimable.append(
                f"p-values of the PLW terms: {data.n_cells} cells (trained models) for "
                f"{len(data.cell_terms)} cell-level fixed effects leave no degree of freedom to tell "
                "the PLW effect from training noise (train more seeds or PLW levels)"
            )
    return data


CONSTANT_ITEMS_WARN = 0.5


def _warn_constant_items(f: pd.DataFrame, warnings: list[str]) -> None:
    """Warn when most items got the same value from every cell (near-deterministic items).

    Such items say nothing about PLW; when they dominate, the item sd is large (tens on the logit
    scale) and the Laplace likelihood can have several optima that differ in the intercept and
    benchmark effects (simulated with item sd 20: intercepts -12 to 11, w2 within 0.04 of each other).
    """
    if f["cell"].nunique() < 2 or not len(f):
        return
    share = float((f.groupby(["benchmark", "item"])["value"].nunique() == 1).mean())
    if share > CONSTANT_ITEMS_WARN:
        warnings.append(
            f"{share:.0%} of items got the same value from every cell: they carry no information on "
            "PLW, and the intercept and benchmark effects are weakly determined (in simulations w "
            "and w2 were not)"
        )


def _crossed(f: pd.DataFrame, n_seeds: int) -> Crossed:
    """Item (benchmark + item id), cell and, with two or more seeds, seed codes of every row."""
    item = pd.factorize(f["benchmark"] + "\x1f" + f["item"])[0]
    small = [pd.factorize(f["cell"])[0]]
    if n_seeds >= 2:
        small.append(pd.factorize(f["seed"])[0])
    return Crossed(item, small, int(item.max()) + 1, [int(s.max()) + 1 for s in small])
