"""The ways a training step can compute a causal LM's loss, shared by bench/loss.py and bench/gpu.py.

Each variant is built once per model (`make_loss`) and then called on a batch (`make_batch`); it
returns the scalar loss a trainer would call `backward` on:

- hf:        Transformers' own loss, `model(input_ids, labels=labels)` with -100 on prompt tokens.
- trl:       TRL's `SFTTrainer.compute_loss` with its defaults at completion-only (`loss_type="nll"`,
             no `compute_loss_func`, no label smoothing), called on a real `SFTTrainer`: its
             constructor patches the model with TRL's fused LM head (`trl.trainer.utils.
             add_fused_lm_head`), which projects the hidden states through the head in tiles and
             returns per-token log-probabilities without [B, T, V] logits. On CUDA/XPU (Triton) it
             scores only the positions whose label is not -100; on other devices it scores every
             position. Its backward recomputes each tile.
- reference: `PLWTrainer(loss=LossConfig(impl="full"))`: plw's weighted loss on full logits.
- chunked:   `LossConfig(impl="chunked")`: plw's fused head + weighted cross-entropy.
- cce/liger: `LossConfig(impl="cce"|"liger")`: the weighted loss from Cut Cross-Entropy or
             Liger Kernel (CUDA only, when installed).
- floor:     no loss head at all: the mean of the final hidden states (the head's weight is touched
             so its gradient exists). What no loss implementation can go below.

plw variants weight prompt tokens by PLW; hf and trl are completion-only (PLW 0 in effect), which
is what a user of either compares plw against.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Callable

import torch

VARIANTS = ("hf", "trl", "reference", "chunked", "cce", "liger", "floor")
PLW_IMPLS = {"reference": "full", "chunked": "chunked", "cce": "cce", "liger": "liger"}
# Libraries a variant needs beyond torch and transformers, and whether it needs CUDA.
_NEEDS = {"trl": ("trl", False), "cce": ("cut_cross_entropy", True), "liger": ("liger_kernel", True)}
PLW_KEYS = ("input_ids", "attention_mask", "labels", "loss_weights", "completion_mask")


def unavailable(variant: str, device: torch.device) -> str | None:
    """Why `variant` cannot run on `device`, or None when it can."""
    module, cuda_only = _NEEDS.get(variant, (None, False))
    if cuda_only and device.type != "cuda":
        return f"{variant} needs CUDA"
    if module and importlib.util.find_spec(module) is None:
        return f"{module} not installed"
    return None


def make_batch(vocab: int, batch: int, seq: int, plw: float, prompt_frac: float, device="cpu", seed=0):
    """Random ids with a prompt/completion split, as plw's collator and TRL's would give them.

    Returns a dict of [B, T] tensors: input_ids, attention_mask (ones), labels (every token, plw's
    convention), hf_labels (-100 on the prompt, Transformers' and TRL's convention), loss_weights
    (float32: PLW on the prompt, 1 on the completion) and completion_mask (1 on the completion).
    """
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (batch, seq), generator=gen)
    prompt = (torch.arange(seq) < int(prompt_frac * seq)).expand(batch, seq)
    out = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": ids.clone(),
        "hf_labels": ids.masked_fill(prompt, -100),
        "loss_weights": torch.where(prompt, plw, 1.0).float(),
        "completion_mask": (~prompt).long(),
    }
    return {k: v.to(device) for k, v in out.items()}


def make_loss(
    variant: str, model, *, plw: float, chunk_size: int = 1024, tokenizer=None, workdir: str | None = None
) -> Callable[[dict], torch.Tensor]:
    """A function batch -> scalar training loss of `variant` on `model` (see the module docstring).

    Builds the trainer a variant needs once, here, so that its set-up is not part of a timed step.
    `tokenizer` is only handed to TRL's trainer (it needs one to build its collator).
    """
    workdir = workdir or tempfile.mkdtemp(prefix="plw-bench-")
    if variant == "hf":
        return lambda b: model(**_ids(b), labels=b["hf_labels"], use_cache=False).loss
    if variant == "trl":
        trainer = sft_trainer(model, tokenizer, workdir)
        return lambda b: trainer.compute_loss(model, {**_ids(b), "labels": b["hf_labels"]})
    if variant == "floor":
        return lambda b: _floor_loss(model, b)
    from plw import PLWTrainer
    from plw.loss.config import LossConfig

    trainer = PLWTrainer(
        model=model,
        args=_training_args(workdir, model),
        prompt_loss_weight=plw,
        loss=LossConfig(impl=PLW_IMPLS[variant], chunk_size=chunk_size),
    )
    # compute_loss pops plw's keys from its inputs, so each call gets a fresh dict.
    return lambda b: trainer.compute_loss(model, {k: b[k] for k in PLW_KEYS})


def init_adam_state(model, optimizer) -> None:
    """Create AdamW's moment buffers with a zero-gradient step, so they exist before any measurement
    (even with --warmup 0) without paying for a forward and backward pass."""
    for param in model.parameters():
        param.grad = torch.zeros_like(param)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def sft_trainer(model, tokenizer, workdir: str):
    """A real `trl.SFTTrainer` on `model` with TRL's default loss at completion-only.

    Only `compute_loss` is called, so its one-record dataset is never used. Building it patches
    `model.forward` with TRL's fused LM head, as it does for every SFTTrainer user.
    """
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    # SFTTrainer insists on a training set; one record, never iterated.
    dataset = Dataset.from_list([{"prompt": "Say hi.", "completion": " Hi."}])
    args = SFTConfig(
        output_dir=workdir,
        report_to="none",
        completion_only_loss=True,
        gradient_checkpointing=False,  # the benchmark decides, for every variant alike
        bf16=False,  # likewise: autocast is the benchmark's, not the trainer's
        use_cpu=_on_cpu(model),
    )
    return SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)


def _training_args(workdir: str, model):
    from transformers import TrainingArguments

    return TrainingArguments(output_dir=workdir, report_to="none", use_cpu=_on_cpu(model))


def _ids(batch: dict) -> dict:
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def _on_cpu(model) -> bool:
    return next(model.parameters()).device.type == "cpu"


def _floor_loss(model, batch: dict) -> torch.Tensor:
    from plw.loss.head import hidden_states_instead_of_logits

    with hidden_states_instead_of_logits(model) as (head_weight, _bias):
        hidden = model(**_ids(batch), use_cache=False).logits
    return hidden.float().mean() + 0.0 * head_weight.sum()
