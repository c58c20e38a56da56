"""Step time and peak memory of three ways to compute the loss of a causal LM, and their floor.

One optimizer step (forward + backward + AdamW step) of SmolLM2-135M-Instruct on random token ids,
with an 80% prompt / 20% completion split:

- hf:        Transformers' own loss, `model(input_ids, labels=labels)` with -100 on prompt tokens.
- reference: plw's weighted loss on full logits (`plw.loss.weighted.plw_loss`) with PLW.
- chunked:   plw's chunked loss (`plw.loss.chunked.chunked_weighted_ce` on hidden states from
             `plw.loss.head.hidden_states_instead_of_logits`) with PLW; no [B, T, V] logits.
- floor:     no loss head at all: the mean of the final hidden states (the head's weight is touched
             so its gradient exists, as in every other variant). The same step minus everything a
             loss over the vocabulary costs: no loss implementation can use less memory or time.

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
import contextlib
import ctypes
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

VARIANTS = ("hf", "reference", "chunked", "floor")
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
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
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


def rss_mib(field: str) -> float:
    """A memory field of /proc/self/status ("VmRSS", "VmHWM") in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def trim_heap() -> None:
    """Return freed heap memory to the OS (glibc), so the resident set counts live memory only."""
    # Not glibc: RSS then also holds memory the allocator keeps for reuse.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so later peaks belong to what follows."""
    Path("/proc/self/clear_refs").write_text("5")


def make_batch(vocab: int, batch: int, seq: int, plw: float, prompt_frac: float, seed: int = 0):
    """Random ids with an 80/20-style prompt/completion split, as plw's collator would give them.

    Returns:
        (input_ids [B, T], labels [B, T] (all tokens), hf_labels [B, T] (-100 on prompt),
        loss_weights [B, T] float32: plw on prompt, 1 on completion).
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (batch, seq), generator=gen)
    prompt = (torch.arange(seq) < int(prompt_frac * seq)).expand(batch, seq)
    hf_labels = ids.masked_fill(prompt, -100)
    weights = torch.where(prompt, plw, 1.0).float()
    return ids, ids.clone(), hf_labels, weights


def loss_fn(variant: str, model, batch, chunk_size: int):
    """The scalar training loss of `batch` under `variant` (the model is called as a trainer would)."""
    from plw.loss.chunked import chunked_weighted_ce
    from plw.loss.head import hidden_states_instead_of_logits
    from plw.loss.weighted import plw_loss, shift_targets

    ids, labels, hf_labels, weights = batch
    if variant == "hf":
        return model(input_ids=ids, labels=hf_labels, use_cache=False).loss
    if variant == "reference":
        return plw_loss(model(input_ids=ids, use_cache=False).logits, labels, weights)
    with hidden_states_instead_of_logits(model) as (head_weight, head_bias):
        hidden = model(input_ids=ids, use_cache=False).logits
    if variant == "floor":
        return hidden.mean() + 0.0 * head_weight.sum()
    targets, shifted = shift_targets(labels, weights)
    flat = hidden[:, :-1, :].reshape(-1, hidden.size(-1))
    total, _ = chunked_weighted_ce(
        flat, head_weight, head_bias, targets.reshape(-1), shifted.reshape(-1), chunk_size=chunk_size
    )
    return total / shifted.sum().clamp(min=1e-8)


def run_child(args: argparse.Namespace) -> dict:
    """Time `repeats` optimizer steps of one variant at one sequence length; print JSON."""
    import torch

    from plw.models import load_model

    seq = args.seq[0]
    rss_start = rss_mib("VmRSS")
    model = load_model(args.model)
    model.train()
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    batch = make_batch(model.config.vocab_size, args.batch, seq, args.plw, args.prompt_frac)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    rss_model = rss_mib("VmRSS")
    init_adam_state(model, optimizer)
    trim_heap()
    baseline = rss_mib("VmRSS")

    def step() -> tuple[float, float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            loss = loss_fn(args.child, model, batch, args.chunk_size)
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


def init_adam_state(model, optimizer) -> None:
    """Create AdamW's moment buffers with a zero-gradient step, so they exist before any measurement
    (even with --warmup 0) without paying for a forward and backward pass."""
    import torch

    for param in model.parameters():
        param.grad = torch.zeros_like(param)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


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
    """Markdown table with ratios against the hf variant of the same sequence length."""
    hf = {r["seq"]: r for r in results if r["variant"] == "hf"}
    columns = ["seq", "variant", "wall s", "x hf", "CPU s", "x hf", "peak RSS MiB", "x hf"]
    columns += ["step delta MiB", "x hf", "loss"]
    rows = ["| " + " | ".join(columns) + " |", "|---:|---|" + "---:|" * (len(columns) - 2)]
    for r in results:
        base = hf.get(r["seq"])

        def ratio(key: str, r=r, base=base) -> str:
            return f"{r[key] / base[key]:.2f}" if base and base[key] > 0 else "-"

        cells = [str(r["seq"]), r["variant"], f"{r['step_s']:.2f}", ratio("step_s"), f"{r['cpu_s']:.2f}"]
        cells += [ratio("cpu_s"), f"{r['peak_rss_mib']:.0f}", ratio("peak_rss_mib"), f"{r['delta_mib']:.0f}"]
        cells += [ratio("delta_mib"), f"{r['loss']:.4f}"]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def verdict(results: list[dict]) -> list[str]:
    """Whether the chunked variant met the issue's targets at the longest sequence."""
    by = {(r["variant"], r["seq"]): r for r in results}
    seq = max(r["seq"] for r in results)
    hf, chunked = by.get(("hf", seq)), by.get(("chunked", seq))
    if not (hf and chunked):
        return ["targets: not checked (needs hf and chunked at the same sequence length)"]
    t = chunked["step_s"] / hf["step_s"]
    c = chunked["cpu_s"] / hf["cpu_s"]
    p = chunked["peak_rss_mib"] / hf["peak_rss_mib"]
    d = chunked["delta_mib"] / hf["delta_mib"] if hf["delta_mib"] > 0 else float("nan")
    return [
        f"seq {seq}: chunked step CPU time {c:.2f}x hf, wall time {t:.2f}x hf (target <= {TIME_TARGET}): "
        f"CPU {'met' if c <= TIME_TARGET else 'NOT met'}, wall {'met' if t <= TIME_TARGET else 'NOT met'}",
        f"seq {seq}: chunked peak RSS {p:.2f}x hf (target <= {MEMORY_TARGET}): "
        f"{'met' if p <= MEMORY_TARGET else 'NOT met'}; step delta above the post-load baseline {d:.2f}x hf",
    ]


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
            if result:
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
