"""Mechanism measures against PLW: weight distance, training-loss RSD, memorisation, retention.

They come from task `train` rows (see docs/results-schema.md) and, for retention (an NLL of held-out
general text, lower is better), from task `retention`. Only unregularised cells are used so the
trend is PLW's alone. Each measure is summarised per PLW level (mean, sd, n) and by a Spearman rank
correlation with PLW, which makes no claim about the trend's shape.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

MEASURES = ("weight_l2", "weight_rel_distance", "loss_rsd", "memorization_bleu")
"""The paper's mechanism measures, in report order."""
EXTRA_MEASURES = ("val_prompt_loss", "val_completion_loss", "retention")
LABELS = {
    "weight_l2": "L2 distance to pre-trained weights",
    "weight_rel_distance": "relative weight distance",
    "loss_rsd": "training loss RSD",
    "memorization_bleu": "memorisation BLEU (0-100)",
    "val_prompt_loss": "validation prompt loss",
    "val_completion_loss": "validation completion loss",
    "retention": "retention NLL (lower is better)",
}


def mechanism_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The unregularised mechanism and retention rows, with a `measure` column.

    Retention keeps its metric name in `measure` when the task has several metrics.
    """
    rows = results[(results["regularizer"] == "none") & results["task"].isin(["train", "retention"])]
    rows = rows[rows["value"].notna()].copy()
    ret = rows["task"] == "retention"
    several = rows.loc[ret, "metric"].nunique() > 1
    rows["measure"] = np.where(ret, "retention_" + rows["metric"] if several else "retention", rows["metric"])
    return rows


def mechanism_table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean, sd and count of each measure per (dataset, model, measure, plw)."""
    rows = mechanism_rows(results)
    cols = ["dataset", "model", "measure", "plw"]
    if rows.empty:
        return pd.DataFrame(columns=[*cols, "mean", "sd", "n"])
    return rows.groupby(cols, as_index=False).agg(
        mean=("value", "mean"), sd=("value", "std"), n=("value", "size")
    )


def mechanism_trends(results: pd.DataFrame) -> tuple[list[dict], list[str]]:
    """Spearman correlation of each measure with PLW, and where it is lowest / highest.

    Returns:
        (rows, not_estimable): one row per (dataset, model, measure) with spearman_rho, p_value,
        n_levels, plw_at_min and plw_at_max (of the per-level means).
    """
    table = mechanism_table(results)
    out, missing = [], []
    for (dataset, model, measure), g in table.groupby(["dataset", "model", "measure"]):
        row = {
            "dataset": dataset,
            "model": model,
            "measure": measure,
            "n_levels": int(len(g)),
            "plw_at_min": float(g.loc[g["mean"].idxmin(), "plw"]),
            "plw_at_max": float(g.loc[g["mean"].idxmax(), "plw"]),
            "spearman_rho": None,
            "p_value": None,
        }
        if len(g) < 3 or g["mean"].nunique() < 2:
            missing.append(
                f"trend of {measure} (dataset {dataset}, model {model}): fewer than 3 PLW levels or "
                "a constant measure"
            )
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rho, p = stats.spearmanr(g["plw"], g["mean"])
            row.update(spearman_rho=float(rho), p_value=float(p))
        out.append(row)
    return out, missing
