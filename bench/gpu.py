"""plw on one GPU: loss correctness, step time and memory against Transformers' and TRL's losses,
PLWSFTTrainer runs, and evaluation against lm-eval; prints tables and writes JSON.

    python bench/gpu.py [--json outputs/gpu.json] [--data-dir ../shared/data] [--budget-s 270]
    python bench/gpu.py --smoke      # the same code on CPU with stories260K, in seconds (the tests run it)

Sections (bench/gpu_checks.py, bench/gpu_speed.py):

1. correctness: chunked, cce and liger weighted losses against plw's full-logits reference, loss and
   gradients, in float32 and bfloat16, at PLW 0, 0.1 and 1, with a tolerance per dtype.
2. sft: PLWSFTTrainer, 20 bfloat16 steps, LoRA and full fine-tuning: finite and falling loss.
3. evaluation: plw against lm-eval's HFLM on ARC-Easy and PIQA: identical scores, speed ratio.
4. speed: a training step's time and peak CUDA memory at sequences 2048 and 4096 for Transformers'
   loss, TRL SFTTrainer's default loss, plw full logits, chunked, cce and liger (those installed),
   on stories260K and randomly initialised models of SmolLM2-135M's shape and a ~1.2B one.

No downloads: stories260K and the benchmarks come from the shared data folder; packages the GPU
machine lacks come from bench/_vendor (bench/vendor_gpu_deps.sh). The speed section stops starting
new measurements once --budget-s is spent (the rest are recorded as skipped), so the whole run fits
in about five minutes. Exit code 1 if a correctness, training or evaluation check failed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import traceback
from pathlib import Path

import gpu_env

# Speed last: it is the section that stops at the time budget, so the others always run.
SECTIONS = ("correctness", "sft", "evaluation", "speed")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="CPU, stories260K, tiny sizes: seconds")
    p.add_argument("--json", type=Path, default=gpu_env.REPO / "outputs" / "gpu.json")
    p.add_argument("--data-dir", type=Path, help="the shared data folder (holds models/stories260K)")
    p.add_argument("--budget-s", type=float, default=270.0, help="no new speed measurement after this")
    p.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    return p.parse_args(argv)


def settings(smoke: bool) -> dict:
    """Sizes of every section: the GPU run, or the CPU smoke run."""
    if smoke:
        return dict(seqs=(64,), shapes=(), stories_batch=2, warmup=1, repeats=1, corr_seq=32,
                    sft_steps=4, sft_batch=4, sft_records=4, eval_limit=4, eval_warmup=False)  # fmt: skip
    return dict(seqs=(2048, 4096), shapes=(("smollm2-135m-shape", 4), ("smollm2-1b-shape", 1)),
                stories_batch=8, warmup=1, repeats=3, corr_seq=256, sft_steps=20, sft_batch=8,
                sft_records=None, eval_limit=500, eval_warmup=True)  # fmt: skip


def run(args: argparse.Namespace) -> dict:
    start = time.monotonic()
    vendored = gpu_env.use_vendored()
    import torch
    from gpu_checks import correctness, evaluation, sft
    from gpu_speed import SpeedCase, speed
    from loss_variants import VARIANTS

    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    data = gpu_env.data_dir(args.data_dir)
    cfg = settings(args.smoke)
    tok = gpu_env.tokenizer(data)
    out = {"meta": {**gpu_env.describe(device), "smoke": args.smoke, "vendored": vendored, "settings": cfg}}
    stories = lambda: gpu_env.stories(data, device)  # noqa: E731
    jobs = {
        "correctness": lambda: correctness(stories(), device, seq=cfg["corr_seq"]),
        "speed": lambda: speed(
            [SpeedCase("stories260K", stories, cfg["stories_batch"])]
            + [SpeedCase(s, lambda s=s: gpu_env.random_model(s, device), b) for s, b in cfg["shapes"]],
            cfg["seqs"],
            [v for v in VARIANTS if v != "floor"],
            device=device,
            tokenizer=tok,
            warmup=cfg["warmup"],
            repeats=cfg["repeats"],
            deadline=start + args.budget_s,
        ),  # fmt: skip
        "sft": lambda: sft(
            data,
            stories,
            tok,
            device,
            steps=cfg["sft_steps"],
            batch=cfg["sft_batch"],
            records=cfg["sft_records"],
        ),
        "evaluation": lambda: evaluation(
            stories().eval(), tok, data / "bench", limit=cfg["eval_limit"], warmup=cfg["eval_warmup"]
        ),
    }
    for name in args.sections:
        t0 = time.monotonic()
        try:
            out[name] = jobs[name]()
        except Exception as err:  # one broken section must not hide the others' results
            traceback.print_exc()
            out[name] = [{"error": f"{type(err).__name__}: {err}"}]
        out["meta"][f"{name}_s"] = time.monotonic() - t0
        print_section(name, out[name])
    out["meta"]["total_s"] = time.monotonic() - start
    out["passed"] = passed(out)
    return out


def passed(out: dict) -> bool:
    """Every check that ran passed: correctness and SFT rows, identical evaluation scores, no errors."""
    rows = [r for name in SECTIONS for r in out.get(name, [])]
    return (
        not any("error" in r for r in rows)
        and all(r["passed"] for name in ("correctness", "sft") for r in out.get(name, []) if "passed" in r)
        and all(r["identical"] for r in out.get("evaluation", []))
    )


def print_section(name: str, rows: list[dict]) -> None:
    """The section's rows as a table (rich, if installed, else plain text)."""
    columns = list(dict.fromkeys(k for r in rows for k in r if k != "tolerance"))
    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    try:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=name)
        for c in columns:
            table.add_column(c)
        for row in cells:
            table.add_row(*row)
        Console(width=200).print(table)
    except ImportError:
        print(f"\n{name}\n" + "\n".join("  ".join(row) for row in [columns, *cells]))
    sys.stdout.flush()


def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-2 or abs(value) >= 1e4 else f"{value:.4f}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = run(args)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2, default=str))
    seconds = out["meta"]["total_s"]
    verdict = "passed" if out["passed"] else "FAILED"
    print(f"{verdict} in {seconds:.0f} s on {out['meta']['device']}; results in {args.json}")
    return 0 if out["passed"] and math.isfinite(seconds) else 1


if __name__ == "__main__":
    sys.exit(main())
