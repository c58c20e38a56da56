"""The checks of bench/gpu.py that are not timings: loss correctness, PLWSFTTrainer runs, evaluation.

- `correctness`: plw's chunked, cce and liger weighted losses against its full-logits reference
  (`PLWTrainer(loss=LossConfig(impl=...))`, all from the same weights and batch), loss and every
  parameter's gradient, per dtype (the model's weights in that dtype) and PLW.
- `sft`: `PLWSFTTrainer` with bfloat16 mixed precision, LoRA and full fine-tuning, on Alpaca
  records: every logged loss finite, and the last steps' mean below the first steps'.
- `evaluation`: plw's multiple-choice scoring against lm-eval's `HFLM` on the same model object and
  the same local items (ARC-Easy, PIQA): scores and time.
"""

from __future__ import annotations

import copy
import json
import math
import tempfile
import time
from pathlib import Path

import torch
from loss_variants import make_batch, make_loss, unavailable

# Largest relative error accepted against the full-logits reference, per dtype: the loss's, and the
# gradient's (L2 norm of the difference over all parameters / L2 norm of the reference gradient).
# bfloat16 references round the logits to 8 bits of mantissa; the fused paths accumulate in float32.
TOLERANCE = {"float32": {"loss": 1e-4, "grad": 1e-3}, "bfloat16": {"loss": 2e-2, "grad": 5e-2}}
TASK_FILES = {
    "arc_easy": ("test", "ai2_arc/ARC-Easy/test.jsonl"),
    "piqa": ("validation", "piqa/validation.jsonl"),
}


def correctness(base_model, device, *, dtypes=("float32", "bfloat16"), plws=(0.0, 0.1, 1.0),
                variants=("chunked", "cce", "liger"), batch=2, seq=256) -> list[dict]:  # fmt: skip
    """A row per (dtype, PLW, variant): relative loss and gradient errors, or why it was skipped."""
    rows = []
    for dtype in dtypes:
        model = copy.deepcopy(base_model).to(device=device, dtype=getattr(torch, dtype))
        tol = TOLERANCE[dtype]
        for plw in plws:
            data = make_batch(model.config.vocab_size, batch, seq, plw, 0.8, device=device, seed=1)
            ref_loss, ref_grad = _loss_and_grad("reference", model, data, plw)
            for variant in variants:
                row = {"dtype": dtype, "plw": plw, "variant": variant}
                why = unavailable(variant, device)
                if why:
                    rows.append({**row, "skipped": why})
                    continue
                try:
                    loss, grad = _loss_and_grad(variant, model, data, plw)
                except Exception as err:  # recorded (and failing the run), the other variants still run
                    rows.append({**row, "error": f"{type(err).__name__}: {err}"})
                    continue
                loss_err = abs(loss - ref_loss) / max(abs(ref_loss), 1e-12)
                grad_err = float((grad - ref_grad).norm() / ref_grad.norm().clamp(min=1e-30))
                ok = loss_err <= tol["loss"] and grad_err <= tol["grad"]
                rows.append({**row, "loss": loss, "ref_loss": ref_loss, "loss_rel_err": loss_err,
                             "grad_rel_err": grad_err, "tolerance": tol, "passed": ok})  # fmt: skip
    return rows


def _loss_and_grad(variant: str, model, data: dict, plw: float) -> tuple[float, torch.Tensor]:
    """The loss of `variant` and the float64 concatenation of every parameter's gradient."""
    model.zero_grad(set_to_none=True)
    loss = make_loss(variant, model, plw=plw)(data)
    loss.backward()
    grads = [p.grad.double().flatten() for p in model.parameters() if p.grad is not None]
    return float(loss), torch.cat(grads)


def alpaca_records(data: Path, n: int) -> list[dict]:
    """The first `n` Alpaca records as TRL prompt-completion records."""
    records = json.loads((data / "instruct" / "alpaca_5000.json").read_text())[:n]
    return [
        {
            "prompt": (r["instruction"] + ("\n" + r["input"] if r["input"] else "")) + "\n",
            "completion": r["output"],
        }
        for r in records
    ]


def sft(data: Path, model_fn, tokenizer, device, *, steps=20, batch=8, records=None, plw=0.1) -> list[dict]:
    """`PLWSFTTrainer` for `steps` bfloat16 steps with LoRA and with full fine-tuning.

    `records` Alpaca records (default: a new batch every step); as many as a batch makes every step
    see the same batch, so a handful of steps already shows the loss falling.
    """
    from datasets import Dataset
    from peft import LoraConfig

    from plw import PLWSFTConfig, PLWSFTTrainer

    dataset = Dataset.from_list(alpaca_records(data, records or steps * batch))
    setups = {
        "lora": (LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"), 5e-3),
        "full": (None, 1e-3),
    }
    rows = []
    for name, (peft_config, lr) in setups.items():
        args = PLWSFTConfig(
            output_dir=tempfile.mkdtemp(prefix=f"plw-gpu-sft-{name}-"), prompt_loss_weight=plw,
            bf16=True, max_steps=steps, per_device_train_batch_size=batch, learning_rate=lr,
            lr_scheduler_type="constant",
            logging_steps=1, save_strategy="no", report_to="none", max_length=256, seed=0,
            use_cpu=device.type == "cpu", gradient_checkpointing=False,
        )  # fmt: skip
        trainer = PLWSFTTrainer(model=model_fn(), args=args, train_dataset=dataset,
                                processing_class=tokenizer, peft_config=peft_config)  # fmt: skip
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        k = max(1, len(losses) // 4)
        first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
        finite = all(math.isfinite(x) for x in losses)
        rows.append({"setup": name, "steps": len(losses), "first_loss": first, "last_loss": last,
                     "seconds": seconds, "finite": finite, "falling": last < first,
                     "passed": finite and last < first and len(losses) == steps})  # fmt: skip
    return rows


def evaluation(model, tokenizer, bench_dir: Path, *, limit=200, batch_size=32, warmup=True) -> list[dict]:
    """plw vs lm-eval on ARC-Easy and PIQA: a row per (task, metric), times in seconds."""
    from lm_eval.models.huggingface import HFLM

    from plw.evaluation import evaluate
    from plw.evaluation.hf import HFModel
    from plw.evaluation.lmeval_bridge import local_task_config, run_lmeval

    ours_lm = HFModel(model, tokenizer, batch_size=batch_size)
    theirs_lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    rows = []
    for task, (split, path) in TASK_FILES.items():
        config = local_task_config(task, {split: bench_dir / path})
        if warmup:  # on a few items (lazy imports, first-call allocations, kernel selection), untimed
            evaluate(ours_lm, task, data_dir=bench_dir, limit=4, progress=False)
            run_lmeval(theirs_lm, [config], limit=4)
        ours, plw_s = _timed(
            lambda t=task: evaluate(ours_lm, t, data_dir=bench_dir, limit=limit, progress=False)
        )
        theirs, lmeval_s = _timed(lambda c=config: run_lmeval(theirs_lm, [c], limit=limit))
        for metric in ("acc", "acc_norm"):
            a, b = ours[task][metric], theirs["results"][task][f"{metric},none"]
            rows.append({"task": task, "metric": metric, "items": limit, "plw": a, "lm_eval": b,
                         "identical": abs(a - b) < 1e-9, "plw_s": plw_s, "lm_eval_s": lmeval_s,
                         "speedup": lmeval_s / plw_s})  # fmt: skip
    return rows


def _timed(fn):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start
