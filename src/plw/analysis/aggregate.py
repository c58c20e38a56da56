"""The relative aggregate score and the regulariser comparison.

Relative aggregate score (the paper does not publish its formula; this is the natural reading of
"each benchmark normalised across runs, then averaged"). Within one (dataset, model) group, for
benchmark b and cell c with score s[c, b]:

    r[c, b] = (s[c, b] - min_c' s[c', b]) / (max_c' s[c', b] - min_c' s[c', b])
    relative_score[c] = mean over the benchmarks b scored in c of r[c, b]

so the best cell on a benchmark gets 1 and the worst 0. Every cell of the group takes part in the
min and max (all PLW levels, regularisers and seeds). A benchmark with the same score in every cell
carries no information and is left out of the group (with a warning).
"""

from __future__ import annotations

import pandas as pd

GROUP = ["dataset", "model"]
CELL = ["dataset", "model", "cell", "plw", "seed", "regularizer"]


def relative_scores(scores: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The relative aggregate score of every cell.

    Args:
        scores: rows from `select_scores` (all regularisers).

    Returns:
        (table, warnings): one row per cell with CELL columns, `relative_score` and `n_benchmarks`.
    """
    warnings: list[str] = []
    rows = scores[scores["score"].notna()]
    if rows.empty:
        return pd.DataFrame(columns=[*CELL, "relative_score", "n_benchmarks"]), warnings
    # Seeds of one cell id are already distinct cells; average duplicate rows (a re-run) first.
    rows = rows.groupby([*CELL, "benchmark"], as_index=False)["score"].mean()
    keys = [*GROUP, "benchmark"]
    lo = rows.groupby(keys)["score"].transform("min")
    hi = rows.groupby(keys)["score"].transform("max")
    flat = hi == lo
    for key in rows.loc[flat, keys].drop_duplicates().itertuples(index=False):
        warnings.append(
            f"relative score: benchmark {key.benchmark!r} (dataset {key.dataset}, model {key.model}) is "
            "constant across cells; left out"
        )
    rows = rows.assign(rel=(rows["score"] - lo) / (hi - lo))[~flat]
    table = rows.groupby(CELL, as_index=False).agg(
        relative_score=("rel", "mean"), n_benchmarks=("rel", "size")
    )
    return table, warnings


def by_condition(relative: pd.DataFrame) -> pd.DataFrame:
    """Mean relative score over seeds per (dataset, model, regularizer, plw)."""
    return relative.groupby([*GROUP, "regularizer", "plw"], as_index=False).agg(
        relative_score=("relative_score", "mean"), n_seeds=("relative_score", "size")
    )


def compare_regularizers(relative: pd.DataFrame) -> tuple[list[dict], list[str]]:
    """Tuned PLW against each regulariser at PLW 0 and 1, per (dataset, model).

    The tuned PLW is the fractional PLW (0 < PLW < 1) with regularizer `none` whose mean relative
    score is highest; it is compared with every other regulariser's cells at PLW 0 and PLW 1 and with
    the unregularised PLW 0 and 1 baselines.

    Args:
        relative: from `relative_scores`.

    Returns:
        (rows, not_estimable): rows with dataset, model, condition, regularizer, plw, relative_score,
        n_seeds and difference (score minus the tuned PLW's).
    """
    out: list[dict] = []
    missing: list[str] = []
    cond = by_condition(relative)
    for (dataset, model), g in cond.groupby(GROUP):
        tuned = g[(g["regularizer"] == "none") & (g["plw"] > 0) & (g["plw"] < 1)]
        others = g[g["regularizer"] != "none"]
        if tuned.empty or others.empty:
            why = "no fractional-PLW cells without a regulariser" if tuned.empty else "no regularised cells"
            missing.append(f"regulariser comparison (dataset {dataset}, model {model}): {why}")
            continue
        best = tuned.loc[tuned["relative_score"].idxmax()]
        out.append(_row(best, "tuned PLW", float(best["relative_score"])))
        ends = g[g["plw"].isin([0.0, 1.0])].sort_values(["regularizer", "plw"], key=_none_first)
        for _, r in ends.iterrows():
            out.append(_row(r, f"{r['regularizer']} at PLW {r['plw']:g}", float(best["relative_score"])))
    return out, missing


def _none_first(col: pd.Series) -> pd.Series:
    # The unregularised baselines first, then the regularisers alphabetically.
    return col.map(lambda v: ("0" if v == "none" else "1") + str(v)) if col.name == "regularizer" else col


def _row(r: pd.Series, condition: str, tuned: float) -> dict:
    return {
        "dataset": r["dataset"],
        "model": r["model"],
        "condition": condition,
        "regularizer": r["regularizer"],
        "plw": float(r["plw"]),
        "relative_score": float(r["relative_score"]),
        "n_seeds": int(r["n_seeds"]),
        "difference": float(r["relative_score"]) - tuned,
    }
