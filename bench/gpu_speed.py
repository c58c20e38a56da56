"""Step time and peak memory of each loss variant (bench/loss_variants.py) on one device.

One optimizer step is forward + backward + AdamW step, under bfloat16 autocast with float32 weights
(Trainer's `bf16=True`), 80% prompt / 20% completion, PLW 0.1 for plw's variants. Each (model,
sequence, variant) builds a fresh model, so TRL's patched forward or one variant's allocator state
cannot leak into another's numbers; on CUDA the peak is `max_memory_allocated` over the timed
steps and "delta" is that peak minus what was allocated before them (model, gradients' absence,
AdamW state), i.e. what a step adds.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from loss_variants import init_adam_state, make_batch, make_loss, unavailable
from measure import Meter


@dataclass
class SpeedCase:
    """One model at its batch size, timed at every sequence length."""

    model: str
    build: Callable[[], torch.nn.Module]
    batch: int


def speed(cases, seqs, variants, *, device, tokenizer, plw=0.1, prompt_frac=0.8, warmup=1, repeats=3,
          deadline=float("inf")) -> list[dict]:  # fmt: skip
    """A row per (model, sequence, variant): timings, memory, loss, or why it was skipped."""
    rows = []
    for case in cases:
        for seq in seqs:
            for variant in variants:
                row = {"model": case.model, "seq": seq, "batch": case.batch, "variant": variant}
                why = unavailable(variant, device)
                if why is None and time.monotonic() > deadline:
                    why = "time budget spent"
                if why:
                    rows.append({**row, "skipped": why})
                    continue
                try:
                    row |= _one(case, seq, variant, device, tokenizer, plw, prompt_frac, warmup, repeats)
                except torch.OutOfMemoryError:
                    row["skipped"] = "out of memory"
                except Exception as err:  # recorded, so one broken variant does not hide the others
                    row["error"] = f"{type(err).__name__}: {err}"
                finally:
                    gc.collect()
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                rows.append(row)
    _add_ratios(rows)
    return rows


def _one(case, seq, variant, device, tokenizer, plw, prompt_frac, warmup, repeats) -> dict:
    meter = Meter(device)
    model = case.build()
    model.train()
    batch = make_batch(model.config.vocab_size, case.batch, seq, plw, prompt_frac, device=device)
    loss_fn = make_loss(variant, model, plw=plw, tokenizer=tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    init_adam_state(model, optimizer)

    def step() -> float:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = loss_fn(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss)

    for _ in range(warmup):  # kernels compiled, workspaces allocated
        step()
    baseline = meter.now_mib()
    meter.reset_peak()
    losses, times = zip(*(meter.timed(step) for _ in range(repeats)), strict=True)
    peak = meter.peak_mib()
    step_s = statistics.median(times)
    return {
        "step_s": step_s,
        "tokens_per_s": case.batch * seq / step_s,
        "peak_mib": peak,
        "delta_mib": peak - baseline,
        "loss": losses[0],
    }


def _add_ratios(rows: list[dict]) -> None:
    """Time and peak memory relative to Transformers' loss (x_hf) and TRL's default loss (x_trl)."""
    timed = [r for r in rows if "step_s" in r]
    for base in ("hf", "trl"):
        ref = {(r["model"], r["seq"]): r for r in timed if r["variant"] == base}
        for r in timed:
            b = ref.get((r["model"], r["seq"]))
            r[f"time_x_{base}"] = r["step_s"] / b["step_s"] if b else None
            r[f"peak_x_{base}"] = r["peak_mib"] / b["peak_mib"] if b else None
