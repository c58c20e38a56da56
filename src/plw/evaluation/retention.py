"""Retention of the base model: how far fine-tuning moved the model's general behaviour.

The base model samples continuations (temperature 1) of generic prompts; the fine-tuned model's
mean negative log-likelihood of those continuations, minus the base model's own, estimates the
per-token KL divergence KL(base || fine-tuned) on that prompt distribution: for y ~ p_base,
E[log p_base(y) - log p_ft(y)] = KL. Lower is better (0 = the base model's behaviour kept).
References are sampled once per base model and cached, so every cell of a sweep is compared with
the same continuations.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from plw.files import write_text_atomic

# Generic requests unrelated to any training family: retention asks whether general behaviour
# survived, not whether the task was learnt.
GENERIC_PROMPTS: tuple[str, ...] = (
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Explain why the sky is blue to a ten-year-old.",
    "Give three tips for staying focused while studying.",
    "Describe the water cycle in a few sentences.",
    "What are the main differences between a cat and a dog as pets?",
    "Write a polite email asking a colleague to reschedule a meeting.",
    "Summarise the rules of chess in simple words.",
    "Suggest a healthy breakfast and explain why it is healthy.",
    "Why do leaves change colour in autumn?",
    "Write a haiku about the sea.",
    "How does a bicycle stay upright when it moves?",
    "List some ways to save energy at home.",
    "Describe a busy market in the morning.",
    "What should someone pack for a weekend camping trip?",
    "Explain what a computer program is.",
    "Write a thank-you note to a teacher.",
)


def _prompt_text(tokenizer: Any, prompt: str) -> str:
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": prompt}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return prompt + "\n"


@torch.no_grad()
def sample_references(
    model: Any, tokenizer: Any, *, n_prompts: int = 16, max_new_tokens: int = 48, seed: int = 0
) -> list[dict[str, list[int]]]:
    """Sampled base-model continuations: [{"prompt": ids, "continuation": ids}]."""
    torch.manual_seed(seed)
    refs = []
    for prompt in (GENERIC_PROMPTS * (1 + n_prompts // len(GENERIC_PROMPTS)))[:n_prompts]:
        ids = tokenizer(
            _prompt_text(tokenizer, prompt), add_special_tokens=False, return_tensors="pt"
        ).input_ids
        out = model.generate(
            ids.to(model.device),
            do_sample=True,
            temperature=1.0,
            top_k=0,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
        )
        refs.append({"prompt": ids[0].tolist(), "continuation": out[0, ids.shape[1] :].tolist()})
    return refs


@torch.no_grad()
def mean_nll(model: Any, refs: list[dict[str, list[int]]]) -> float:
    """Mean per-token negative log-likelihood of the continuations given their prompts."""
    total, count = 0.0, 0
    for ref in refs:
        if not ref["continuation"]:
            continue
        ids = torch.tensor([ref["prompt"] + ref["continuation"]], device=model.device)
        logits = model(input_ids=ids, use_cache=False).logits[0, len(ref["prompt"]) - 1 : -1].float()
        targets = ids[0, len(ref["prompt"]) :]
        total += torch.nn.functional.cross_entropy(logits, targets, reduction="sum").item()
        count += targets.numel()
    return total / max(count, 1)


def base_references(base_spec: str, cache: Path, **options: Any) -> dict[str, Any]:
    """References and the base model's NLL on them, computed once per base model and options."""
    from plw.models import load_model, load_tokenizer

    key = hashlib.sha256(json.dumps([base_spec, options], sort_keys=True).encode()).hexdigest()[:16]
    path = cache / f"retention-{key}.json"
    if path.is_file():
        return json.loads(path.read_text())
    model, tokenizer = load_model(base_spec).eval(), load_tokenizer(base_spec)
    refs = sample_references(model, tokenizer, **options)
    data = {"base": base_spec, "options": options, "refs": refs, "base_nll": mean_nll(model, refs)}
    write_text_atomic(path, json.dumps(data))
    return data


def retention(model: Any, base_spec: str, cache: Path, **options: Any) -> dict[str, float]:
    """{"kl_estimate": nats per token, "nll": fine-tuned NLL, "base_nll": base NLL} for `model`."""
    data = base_references(base_spec, cache, **options)
    nll = mean_nll(model, data["refs"])
    return {"kl_estimate": nll - data["base_nll"], "nll": nll, "base_nll": data["base_nll"]}
