"""Benchmark `dataset_stats` on 50k Alpaca records (alpaca_5000.json repeated 10 times).

Usage: .venv/bin/python bench/stats.py [--tokenizer SPEC] [--copies N]
Prints records/s for the raw Rg pass (`generation_ratio`) and the full statistics (`dataset_stats`,
which also tokenises the templated text). Reads ../shared/data in place (PLW_SHARED_DATA overrides).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from plw.data.sources import Record, read_records
from plw.data.spm import load_any_tokenizer
from plw.data.stats import dataset_stats, generation_ratio

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PLW_SHARED_DATA") or REPO.parent / "shared" / "data")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", default=str(SHARED / "models" / "llama_tokenizer" / "tokenizer.model"))
    parser.add_argument("--copies", type=int, default=10)
    args = parser.parse_args()
    source = SHARED / "instruct" / "alpaca_5000.json"
    if not source.exists():
        sys.exit(f"shared data not found: {source} (set PLW_SHARED_DATA)")
    base = read_records(str(source))
    records = [Record(r.data, f"{r.where}#{k}") for k in range(args.copies) for r in base]
    tokenizer = load_any_tokenizer(args.tokenizer)
    for name, run in (
        ("generation_ratio", lambda: generation_ratio(records, tokenizer, skip_bad_records=True)),
        (
            "dataset_stats",
            lambda: dataset_stats(records, tokenizer, skip_bad_records=True)["generation_ratio"],
        ),
    ):
        start = time.perf_counter()
        rg = run()
        seconds = time.perf_counter() - start
        rate = len(records) / seconds
        print(
            f"{name:17s} {len(records):,} records in {seconds:5.1f} s = {rate:8,.0f} records/s (Rg {rg:.3f})"
        )


if __name__ == "__main__":
    main()
