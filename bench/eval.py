"""Speed and agreement of plw's multiple-choice scoring against lm-evaluation-harness.

Times plw (`plw.evaluation.evaluate`) and lm-eval (`HFLM` + `simple_evaluate` with the task YAMLs
pointed at the same local files) on the same in-memory model object and the same items, in one
process, alternating the two so background load hits both alike, and prints accuracies and the
speed ratio. Prints, never asserts: timings depend on the machine.

    .venv/bin/python bench/eval.py [--model smollm2-135m-instruct] [--tasks arc_easy,piqa]
        [--limit 200] [--batch-size 16] [--repeats 1] [--threads N] [--data-dir ../shared/data/bench]
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
FILES = {
    "arc_easy": ("test", "ai2_arc/ARC-Easy/test.jsonl"),
    "arc_challenge": ("test", "ai2_arc/ARC-Challenge/test.jsonl"),
    "piqa": ("validation", "piqa/validation.jsonl"),
    "winogrande": ("validation", "winogrande/winogrande_xl/validation.jsonl"),
    "truthfulqa_mc1": ("validation", "truthful_qa/multiple_choice/validation.jsonl"),
    "truthfulqa_mc2": ("validation", "truthful_qa/multiple_choice/validation.jsonl"),
}


def parse_args() -> argparse.Namespace:
    default_data = Path(os.environ.get("PLW_SHARED_DATA", REPO.parent / "shared" / "data")) / "bench"
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--tasks", default="arc_easy,piqa")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--repeats", type=int, default=1, help="timed runs per side; the fastest counts")
    p.add_argument("--data-dir", type=Path, default=default_data)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    return p.parse_args()


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    args = parse_args()
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    missing = [t for t in tasks if t not in FILES or not (args.data_dir / FILES[t][1]).is_file()]
    if missing:
        print(f"skipped: no local data for {', '.join(missing)} under {args.data_dir}")
        tasks = [t for t in tasks if t not in missing]
    if not tasks:
        return 0
    import torch
    from lm_eval.models.huggingface import HFLM

    from plw.evaluation import evaluate
    from plw.evaluation.hf import HFModel
    from plw.evaluation.lmeval_bridge import local_task_config, run_lmeval

    if args.threads:
        torch.set_num_threads(args.threads)
    plw_lm = HFModel.from_spec(args.model, batch_size=args.batch_size)
    hf = HFLM(pretrained=plw_lm.model, tokenizer=plw_lm.tokenizer, batch_size=args.batch_size)
    print(
        f"model {args.model}, {args.limit} items per task, batch size {args.batch_size}, "
        f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}"
    )
    cols = f"{'plw':>8}{'lm-eval':>9}{'plw s':>8}{'lm-eval s':>11}{'ratio':>7}{'cpu ratio':>11}"
    print(f"{'task':<16}{'metric':<10}{cols}")
    total = {"plw": 0.0, "lmeval": 0.0, "plw_cpu": 0.0, "lmeval_cpu": 0.0}
    for task in tasks:
        split, path = FILES[task]
        config = local_task_config(task, {split: args.data_dir / path})
        # Warm-up (first-call allocations, lazy imports) on a few items, untimed.
        evaluate(plw_lm, task, data_dir=args.data_dir, limit=4, progress=False)
        run_lmeval(hf, [config], limit=4)
        best = {"plw": (None, 1e9, 0.0), "lmeval": (None, 1e9, 0.0)}
        run_ours = functools.partial(
            evaluate, plw_lm, task, data_dir=args.data_dir, limit=args.limit, progress=False
        )
        run_theirs = functools.partial(run_lmeval, hf, [config], limit=args.limit)
        for _ in range(args.repeats):
            ours = timed(run_ours)
            theirs = timed(run_theirs)
            best["plw"] = min(best["plw"], ours, key=lambda r: r[1])
            best["lmeval"] = min(best["lmeval"], theirs, key=lambda r: r[1])
        (ours, t_ours, c_ours), (theirs, t_theirs, c_theirs) = best["plw"], best["lmeval"]
        theirs = theirs["results"][task]
        total["plw"] += t_ours
        total["lmeval"] += t_theirs
        total["plw_cpu"] += c_ours
        total["lmeval_cpu"] += c_theirs
        for metric in ("acc", "acc_norm", "mc2"):
            if metric not in ours[task]:
                continue
            key = "acc,none" if metric == "mc2" else f"{metric},none"
            print(
                f"{task:<16}{metric:<10}{ours[task][metric]:>8.4f}{theirs[key]:>9.4f}"
                f"{t_ours:>8.1f}{t_theirs:>11.1f}{t_theirs / t_ours:>7.2f}{c_theirs / c_ours:>11.2f}"
            )
        sys.stdout.flush()
    print(
        f"{'total':<16}{'':<10}{'':>8}{'':>9}{total['plw']:>8.1f}{total['lmeval']:>11.1f}"
        f"{total['lmeval'] / total['plw']:>7.2f}{total['lmeval_cpu'] / total['plw_cpu']:>11.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
