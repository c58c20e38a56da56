"""Step time and peak memory of the ways to compute the loss of a causal LM, and their floor.

One optimizer step (forward + backward + AdamW step) of SmolLM2-135M-Instruct on random token ids,
with an 80% prompt / 20% completion split, for the variants of bench/loss_variants.py: hf
(Transformers' own loss), trl (TRL SFTTrainer's default loss at completion-only, through a real
SFTTrainer), reference (plw on full logits), chunked (plw's chunked loss), floor (no loss head at
all); cce and liger need CUDA (see bench/gpu.py). plw variants use PLW (default 0.1).

Every (variant, sequence length) runs in a fresh child process, so one variant's allocator state
cannot leak into another's peak. Memory is the resident set (Linux VmHWM, reset with clear_refs
just before the timed steps; freed heap memory is handed back with malloc_trim first, so what the
warm-up step left in the allocator does not count): "peak" is the absolute high-water mark, model +
gradients + AdamW state included, and "delta" is that peak minus the baseline, the resident set
after the model is loaded and AdamW's state created, i.e. what a step's activations, logits, loss
buffers, parameter gradients and optimizer temporaries add.

Time is reported as wall-clock and as process CPU time (user + system, all threads). On a machine
shared with other jobs the wall time of a step swings by 2x while its CPU time stays within a few
percent, so the CPU-time ratio is the fairer comparison there; children run with
OMP_WAIT_POLICY=PASSIVE (unless set) so threads waiting for a core do not burn CPU time spinning.

    .venv/bin/python bench/loss.py --seq 512 1024 2048 --batch 4 --repeats 2

Exits non-zero only if a child crashes; missed targets are reported, not fatal.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loss_variants import VARIANTS, init_adam_state, make_batch, make_loss, unavailable  # noqa: E402
from measure import reset_peak_rss, rss_mib, trim_heap  # noqa: E402

CPU_VARIANTS = ("hf", "trl", "reference", "chunked", "floor")
MODEL = "smollm2-135m-instruct"
# Targets from the issue, checked against the hf variant at the longest sequence.
TIME_TARGET, MEMORY_TARGET = 1.05, 0.6


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seq", type=int, nargs="+", default=[512, 1024, 2048], help="sequence lengths")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before the timed ones")
    parser.add_argument("--plw", type=float, default=0.1, help="prompt loss weight")
    parser.add_argument("--prompt-frac", type=float, default=0.8, help="share of prompt tokens")
    parser.add_argument("--chunk-size", type=int, default=1024, help="tokens per chunk (chunked variant)")
    parser.add_argument("--variants", nargs="+", default=list(CPU_VARIANTS), choices=VARIANTS)
    parser.add_argument("--model", default=MODEL)
    parser.add_argument(
        "--gradient-checkpointing", action="store_true", help="recompute layer activations in backward"
    )
    parser.add_argument(
        "--bf16",
        action="store_true",
        help="mixed precision as Trainer's bf16=True: float32 weights, forward under bfloat16 autocast",
    )
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ---- child: one variant, one sequence length -----------------------------------------------------


def run_child(args: argparse.Namespace) -> dict:
    """Time `repeats` optimizer steps of one variant at one sequence length; print JSON."""
    import torch

    from plw.models import load_model, load_tokenizer

    seq = args.seq[0]
    why = unavailable(args.child, torch.device("cpu"))
    if why:
        return {"variant": args.child, "seq": seq, "skipped": why}
    rss_start = rss_mib("VmRSS")
    model = load_model(args.model)
    model.train()
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    batch = make_batch(model.config.vocab_size, args.batch, seq, args.plw, args.prompt_frac)
    tokenizer = load_tokenizer(args.model) if args.child == "trl" else None
    loss_fn = make_loss(args.child, model, plw=args.plw, chunk_size=args.chunk_size, tokenizer=tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    rss_model = rss_mib("VmRSS")
    init_adam_state(model, optimizer)
    trim_heap()
    baseline = rss_mib("VmRSS")

    def step() -> tuple[float, float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            loss = loss_fn(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - wall, time.process_time() - cpu, float(loss)

    for _ in range(args.warmup):
        step()
    trim_heap()
    rss_before = rss_mib("VmRSS")
    reset_peak_rss()
    walls, cpus, losses = zip(*(step() for _ in range(args.repeats)), strict=True)
    peak = rss_mib("VmHWM")
    return {
        "variant": args.child,
        "seq": seq,
        "batch": args.batch,
        "step_s": statistics.median(walls),
        "cpu_s": statistics.median(cpus),
        "step_s_all": list(walls),
        "cpu_s_all": list(cpus),
        "loss": losses[0],
        "rss_model_mib": rss_model - rss_start,
        "baseline_mib": baseline,
        "rss_before_step_mib": rss_before,
        "peak_rss_mib": peak,
        "delta_mib": peak - baseline,
        "threads": torch.get_num_threads(),
    }


# ---- parent: spawn children, print the table -----------------------------------------------------


def spawn(args: argparse.Namespace, variant: str, seq: int) -> dict | None:
    """Run one child; None (after printing its stderr) if it crashed."""
    cmd = [sys.executable, __file__, "--child", variant, "--seq", str(seq), "--batch", str(args.batch)]
    cmd += [
        "--repeats",
        str(args.repeats),
        "--warmup",
        str(args.warmup),
        "--plw",
        str(args.plw),
        "--prompt-frac",
        str(args.prompt_frac),
    ]
    cmd += ["--chunk-size", str(args.chunk_size), "--model", args.model]
    cmd += ["--gradient-checkpointing"] if args.gradient_checkpointing else []
    cmd += ["--bf16"] if args.bf16 else []
    env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        print(
            f"[{variant} seq={seq}] crashed (exit {proc.returncode}):\n{proc.stderr[-3000:]}", file=sys.stderr
        )
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(results: list[dict]) -> str:
    """Markdown table with ratios against the hf and trl variants of the same sequence length."""
    bases = {name: {r["seq"]: r for r in results if r["variant"] == name} for name in ("hf", "trl")}
    columns = ["seq", "variant", "wall s", "x hf", "CPU s", "x hf", "x trl", "peak RSS MiB", "x hf", "x trl"]
    columns += ["step delta MiB", "x hf", "x trl", "loss"]
    rows = ["| " + " | ".join(columns) + " |", "|---:|---|" + "---:|" * (len(columns) - 2)]
    for r in results:

        def ratio(key: str, base: str, r=r) -> str:
            b = bases[base].get(r["seq"])
            return f"{r[key] / b[key]:.2f}" if b and b[key] > 0 else "-"

        cells = [str(r["seq"]), r["variant"], f"{r['step_s']:.2f}", ratio("step_s", "hf")]
        cells += [f"{r['cpu_s']:.2f}"]
        cells += [ratio("cpu_s", "hf"), ratio("cpu_s", "trl"), f"{r['peak_rss_mib']:.0f}"]
        cells += [ratio("peak_rss_mib", "hf"), ratio("peak_rss_mib", "trl"), f"{r['delta_mib']:.0f}"]
        cells += [ratio("delta_mib", "hf"), ratio("delta_mib", "trl"), f"{r['loss']:.4f}"]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def ratios(r: dict, base: dict) -> tuple[float, float, float, float]:
    """(wall time, CPU time, peak RSS, step memory delta) of result r over a baseline result."""
    delta = r["delta_mib"] / base["delta_mib"] if base["delta_mib"] > 0 else float("nan")
    memory = r["peak_rss_mib"] / base["peak_rss_mib"]
    return r["step_s"] / base["step_s"], r["cpu_s"] / base["cpu_s"], memory, delta


def verdict(results: list[dict]) -> list[str]:
    """Whether the chunked variant met the targets at the longest sequence: against hf (step time and
    peak memory, TIME_TARGET and MEMORY_TARGET) and against trl (no more time, no more memory)."""
    by = {(r["variant"], r["seq"]): r for r in results}
    seq = max(r["seq"] for r in results)
    hf, trl, chunked = by.get(("hf", seq)), by.get(("trl", seq)), by.get(("chunked", seq))
    if not chunked:
        return ["targets: not checked (no chunked result at the longest sequence)"]
    lines = []
    if hf:
        t, c, p, d = ratios(chunked, hf)
        lines += [
            f"seq {seq}: chunked step CPU time {c:.2f}x hf, wall time {t:.2f}x hf (target <= {TIME_TARGET}): "
            f"CPU {met(c <= TIME_TARGET)}, wall {met(t <= TIME_TARGET)}",
            f"seq {seq}: chunked peak RSS {p:.2f}x hf (target <= {MEMORY_TARGET}): "
            f"{met(p <= MEMORY_TARGET)}; step delta above the post-load baseline {d:.2f}x hf",
        ]
    if trl:
        t, c, p, d = ratios(chunked, trl)
        lines += [
            f"seq {seq}: chunked (PLW) vs TRL's default loss (completion-only): CPU time {c:.2f}x "
            f"({met(c <= 1)}), wall {t:.2f}x, peak RSS {p:.2f}x ({met(p <= 1)}), step delta {d:.2f}x",
        ]
    return lines or ["targets: not checked (needs hf or trl next to chunked)"]


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line
        ]
        cpu = names[0] if names else cpu
    import torch

    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def summary(r: dict) -> str:
    return (
        f"{r['step_s']:.2f} s wall, {r['cpu_s']:.2f} s CPU, "
        f"peak {r['peak_rss_mib']:.0f} MiB, delta {r['delta_mib']:.0f} MiB"
    )


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args)))
        return 0
    print(f"machine: {machine()}")
    print(f"load average at start: {load()}")
    print(
        f"model {args.model}, batch {args.batch}, PLW {args.plw}, prompt share {args.prompt_frac}, "
        f"chunk {args.chunk_size}, {args.repeats} timed step(s) after {args.warmup} warm-up, "
        f"gradient checkpointing {'on' if args.gradient_checkpointing else 'off'}, "
        f"{'bfloat16 autocast' if args.bf16 else 'float32'}",
        flush=True,
    )
    results, crashed = [], False
    for seq in args.seq:
        for variant in args.variants:
            result = spawn(args, variant, seq)
            crashed |= result is None
            if result and "skipped" in result:
                print(f"  {variant:9s} seq {seq}: skipped ({result['skipped']})", flush=True)
            elif result:
                results.append(result)
                print(f"  {variant:9s} seq {seq}: {summary(result)}", flush=True)
    print(f"load average at end: {load()}")
    if results:
        print()
        print(table(results))
        print()
        print("\n".join(verdict(results)))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
