"""Seed-to-seed noise of the CPU replication's short-data cells (docs/replication.md, "A second seed").

Not a timing: it reads the committed per-item exports of design A's re-run and of its second seed,
and prints, over the items scored 0/1 with each benchmark's primary metric (the selection of
`plw analyze`'s paired comparisons), how often two seeds at one PLW answer differently against two
PLW levels within one seed. With `--out DIR` it also writes the nine short-data cells as one results
table with its per-item file beside it, for the item-level fit:

    .venv/bin/python bench/seed_noise.py --out /tmp/seeds
    .venv/bin/plw analyze /tmp/seeds/results.csv --bootstrap 0
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from scipy.stats import binomtest

from plw.analysis.items import load_items
from plw.analysis.paired import is_binary, select_items
from plw.analysis.results import load_results

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
SEED0, SEED1 = RESULTS / "replicate-cpu-rerun", RESULTS / "replicate-cpu-seed1"


def short_cells() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(results, items) of design A's short-data cells, both seeds."""
    tables = [(load_results(f"{s}.csv"), f"{s}-items.csv.gz") for s in (SEED0, SEED1)]
    results = pd.concat([r[r["dataset"] == "short"] for r, _ in tables])
    items = pd.concat([load_items(path, r) for r, path in tables])
    return results, items[items["cell"].isin(set(results["cell"]))]


def answers(results: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """0/1 answers, one row per (benchmark, item), one column per (plw, seed)."""
    frame, _ = select_items(items, "primary")
    binary = [b for b, rows in frame.groupby("benchmark") if is_binary(rows["metric"].iloc[0], rows["value"])]
    frame = frame[frame["benchmark"].isin(binary)]
    seeds = results.drop_duplicates("cell").set_index("cell")["seed"].astype(int)
    frame = frame.assign(seed=frame["cell"].map(seeds))
    return frame.pivot_table(index=["benchmark", "item"], columns=["plw", "seed"], values="value")


def compare(a: pd.Series, b: pd.Series) -> str:
    diff = a - b
    up, down = int((diff > 0).sum()), int((diff < 0).sum())
    p = binomtest(up, up + down).pvalue if up + down else 1.0
    share = 100 * (up + down) / len(diff)
    return (
        f"{100 * diff.mean():+.1f} points, {up + down} items differ ({share:.1f}%), exact McNemar p = {p:.2g}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the nine cells' results.csv and items here")
    args = parser.parse_args()
    results, items = short_cells()
    table = answers(results, items)
    print(f"{len(table)} items scored 0/1")
    for plw in sorted({p for p, s in table.columns if (p, 1) in table.columns}):
        print(f"PLW {plw:g}, seed 1 - seed 0: {compare(table[(plw, 1)], table[(plw, 0)])}")
    for seed in (0, 1):
        for high, low in ((0.25, 0.0), (1.0, 0.0), (1.0, 0.25)):
            print(
                f"seed {seed}, PLW {high:g} - PLW {low:g}: {compare(table[(high, seed)], table[(low, seed)])}"
            )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        results.to_csv(args.out / "results.csv", index=False)
        raw = pd.concat([pd.read_csv(f"{s}-items.csv.gz") for s in (SEED0, SEED1)])
        raw[raw["cell"].isin(set(results["cell"]))].to_csv(args.out / "results-items.csv.gz", index=False)
        print(f"wrote {args.out / 'results.csv'} and its per-item file")


if __name__ == "__main__":
    main()
