"""The paper's mechanism measures of a trained cell (rows with task "train", docs/results-schema.md).

- `weight_l2`, `weight_rel_distance`: L2 norm of fine-tuned minus pre-trained weights, and that norm
  over the pre-trained weights' norm; also per layer (`layer_<i>`, and `other` for parameters
  outside the numbered blocks), returned apart from the rows (the store's `layers` table). For LoRA
  the delta of a module is B @ A * scale; its norm is taken as sqrt(sum((B^T B) * (A A^T))), which
  equals ||B @ A||_F without materialising the product.
- `loss_rsd`: standard deviation (ddof 1) over mean of the logged training `loss` values.
- `val_prompt_loss`, `val_completion_loss`: mean token loss of each part on held-out records
  (training's eval metrics when the cell has eval_data, else the records after `data.limit`).
- `memorization_bleu`: corpus BLEU of greedy generations on sampled training prompts against their
  training completions, prompts rendered and tokenised exactly as in training.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

from plw.batch import IGNORE_INDEX

log = logging.getLogger("plw.experiment")
MEMORIZATION_SEED = 0  # fixed, so every cell of a dataset is scored on the same prompts
_LAYER = re.compile(r"(?:^|\.)(?:layers|layer|h|blocks)\.(\d+)\.")
_LORA_A = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<kind>embedding_)?A(?:\.weight)?$")
TOKENS_PER_BATCH = 4096


def row(metric: str, value: float | None) -> dict[str, Any] | None:
    """A result row of task "train", or None for a missing or non-finite value."""
    if value is None or not math.isfinite(value):
        return None
    return {"task": "train", "metric": metric, "value": float(value), "stderr": None}


def loss_rsd(history: list[dict[str, Any]]) -> float | None:
    """Relative standard deviation of the logged training loss (None with fewer than two values)."""
    import numpy as np

    losses = np.array([e["loss"] for e in history if isinstance(e.get("loss"), int | float)], dtype=float)
    if len(losses) < 2 or losses.mean() == 0:
        return None
    return float(losses.std(ddof=1) / losses.mean())


def layer_group(name: str) -> str:
    """`layer_<i>` for parameters of the i-th block, else `other`."""
    match = _LAYER.search(name)
    return f"layer_{match.group(1)}" if match else "other"


def _safetensor_files(spec: str) -> list[Path]:
    """The safetensors files of a model spec or directory (hub models: from the local HF cache)."""
    from plw.models import materialize, resolve_model

    source = Path(materialize(resolve_model(spec)))
    if not source.is_dir():
        from huggingface_hub import snapshot_download

        source = Path(snapshot_download(str(source), local_files_only=True, allow_patterns=["*.safetensors"]))
    files = sorted(source.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{source}: no .safetensors weights to compare against")
    return files


def _tensors(files: list[Path]):
    """Yield (name, float64 tensor) from safetensors files, one tensor in memory at a time."""
    from safetensors import safe_open

    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118 - safe_open handles are not iterable
                yield name, handle.get_tensor(name).double()


def _squared_norms(tensors) -> dict[str, float]:
    sums: dict[str, float] = defaultdict(float)
    for name, tensor in tensors:
        sums[layer_group(name)] += float(tensor.pow(2).sum())
    return sums


def _full_delta_norms(base_files: list[Path], model_dir: Path) -> dict[str, float]:
    from contextlib import ExitStack

    from safetensors import safe_open

    sums: dict[str, float] = defaultdict(float)
    with ExitStack() as stack:
        where = {}
        for file in base_files:
            handle = stack.enter_context(safe_open(str(file), framework="pt"))
            where.update(dict.fromkeys(handle.keys(), handle))
        for name, tuned in _tensors(sorted(model_dir.glob("*.safetensors"))):
            if name in where:
                sums[layer_group(name)] += float((tuned - where[name].get_tensor(name).double()).pow(2).sum())
    return sums


def _lora_delta_norms(adapter_dir: Path) -> dict[str, float]:
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    tensors = dict(_tensors(sorted(adapter_dir.glob("adapter_model*.safetensors"))))
    sums: dict[str, float] = defaultdict(float)
    for key, a in tensors.items():
        match = _LORA_A.match(key)
        if not match:
            continue
        # Linear: A [r, in], B [out, r]; embedding: A [r, vocab], B [dim, r]. Either way r = A.shape[0].
        b = tensors[key.replace(f"lora_{match['kind'] or ''}A", f"lora_{match['kind'] or ''}B")]
        rank = a.shape[0]
        alpha = float(config.get("lora_alpha", rank))
        scale = alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank
        sums[layer_group(match["module"])] += scale**2 * float(((b.T @ b) * (a @ a.T)).sum())
    return sums


def weight_distance(base_spec: str, model_dir: Path) -> dict[str, float]:
    """Distances of a trained model (or LoRA adapter) directory from its base model's weights."""
    base_files = _safetensor_files(base_spec)
    base = _squared_norms(_tensors(base_files))
    if (model_dir / "adapter_config.json").is_file():
        delta = _lora_delta_norms(model_dir)
    else:
        delta = _full_delta_norms(base_files, model_dir)
    out = {"weight_l2": math.sqrt(sum(delta.values()))}
    out["weight_rel_distance"] = out["weight_l2"] / math.sqrt(sum(base.values()))
    for group in sorted(base, key=_group_order):
        out[f"weight_l2.{group}"] = math.sqrt(delta.get(group, 0.0))
        out[f"weight_rel_distance.{group}"] = out[f"weight_l2.{group}"] / math.sqrt(base[group] or 1.0)
    return out


def _group_order(group: str) -> tuple[int, int]:
    return (1, 0) if group == "other" else (0, int(group.split("_")[1]))


def _batches(examples: list[dict], tokens: int = TOKENS_PER_BATCH):
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]))
    batch: list[dict] = []
    for i in order:
        if batch and (len(batch) + 1) * len(examples[i]["input_ids"]) > tokens:
            yield batch
            batch = []
        batch.append(examples[i])
    if batch:
        yield batch


def part_losses(model, examples: list[dict], pad_id: int) -> tuple[float | None, float | None]:
    """Mean next-token loss over prompt tokens and over completion tokens (unweighted).

    Batched as training batches (`PLWDataCollator`, every token weighing 1) and scored by training's
    loss (`NextTokenLoss`): its per-token NLL [B, T-1] is split by the completion mask of the
    predicted token; padding and the first token of each example are never predicted.

    Returns:
        (prompt loss, completion loss), None for a part without tokens.
    """
    import torch

    from plw.data.collator import PLWDataCollator
    from plw.loss.next_token import NextTokenLoss

    collate, loss = PLWDataCollator(pad_id, prompt_loss_weight=1.0), NextTokenLoss()
    device = next(model.parameters()).device
    sums, counts = [0.0, 0.0], [0, 0]
    with torch.no_grad():
        for examples_batch in _batches(examples):
            batch = {k: v.to(device) for k, v in collate(examples_batch).items()}
            inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
            result = loss(model, inputs, batch["labels"], batch["loss_weights"])
            predicted = result.targets.ne(IGNORE_INDEX)
            completion = batch["completion_mask"][:, 1:].bool()
            for part, selected in enumerate((predicted & ~completion, predicted & completion)):
                sums[part] += float(result.nll[selected].double().sum())
                counts[part] += int(selected.sum())
    return tuple(s / c if c else None for s, c in zip(sums, counts, strict=True))  # type: ignore[return-value]


def heldout_examples(config, tokenizer, n: int) -> list[dict]:
    """Encoded records [limit, limit + n) of the training source; [] when all records are trained on."""
    from plw.data.load import load_records
    from plw.data.tokenize import encode_records
    from plw.training.run import encode_options

    data = config.data
    if data.limit is None:
        return []
    records = load_records(data.path, config=data.config, split=data.split, limit=data.limit + n)[
        data.limit :
    ]
    options = replace(encode_options(data, config), skip_bad_records=True)
    examples, _ = encode_records(records, tokenizer, options)
    return examples


def memorization_bleu(model, tokenizer, examples: list[dict], n: int, max_new_tokens: int) -> float | None:
    """Corpus BLEU (0-100) of greedy generations against the training completions of n sampled examples."""
    import sacrebleu

    picked = random.Random(MEMORIZATION_SEED).sample(range(len(examples)), min(n, len(examples)))
    prompts, references = [], []
    for i in picked:
        ids, mask = examples[i]["input_ids"], examples[i]["completion_mask"]
        if 1 not in mask:
            continue
        start = mask.index(1)
        end = start + next((k for k, m in enumerate(mask[start:]) if not m), len(mask) - start)
        prompts.append(ids[:start])
        references.append(tokenizer.decode(ids[start:end], skip_special_tokens=True).strip())
    if not prompts:
        return None
    from plw.evaluation.hf import HFModel

    generations = HFModel(model, tokenizer, batch_size=16).generate_ids(prompts, max_new_tokens)
    hypotheses = [h.strip() for h in generations]
    return float(sacrebleu.corpus_bleu(hypotheses, [references]).score)


def measure(
    config, train_dir: Path, settings, base_spec: str, model=None, tokenizer=None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """All enabled mechanism measures of a trained cell: (result rows, per-layer rows).

    Per-layer weight distances ({layer, metric, value}) are kept apart from the tidy results table,
    whose `train` metrics are the schema's whole-model measures.

    Args:
        config: the cell's TrainConfig.
        train_dir: its training output directory.
        settings: the study's EvalSettings.
        base_spec: the pre-trained model the cell started from.
        model, tokenizer: the trained model, if already loaded (needed for validation loss without
            eval_data and for memorisation).
    """
    from plw.data.cache import encode_cached
    from plw.training.run import encode_options

    rows, layers = [], []
    if settings.loss_rsd:
        rows.append(row("loss_rsd", loss_rsd(json.loads((train_dir / "log_history.json").read_text()))))
    if settings.weight_distance:
        for key, value in weight_distance(base_spec, train_dir / "model").items():
            metric, _, layer = key.partition(".")
            if layer:
                layers.append({"layer": layer, "metric": metric, "value": value})
            else:
                rows.append(row(metric, value))
    if settings.validation_loss:
        metrics = json.loads((train_dir / "metrics.json").read_text())
        losses = (metrics.get("eval_prompt_loss"), metrics.get("eval_completion_loss"))
        if losses == (None, None) and model is not None:
            examples = heldout_examples(config, tokenizer, settings.validation_samples)
            losses = part_losses(model, examples, tokenizer.pad_token_id) if examples else (None, None)
            if not examples:
                log.info("no held-out records (data.limit unset and no eval_data): validation loss skipped")
        rows += [row("val_prompt_loss", losses[0]), row("val_completion_loss", losses[1])]
    if settings.memorization_samples and model is not None:
        examples, _ = encode_cached(config.data.model_dump(), tokenizer, encode_options(config.data, config))
        bleu = memorization_bleu(model, tokenizer, examples, settings.memorization_samples,
                                 settings.memorization_max_new_tokens)  # fmt: skip
        rows.append(row("memorization_bleu", bleu))
    return [r for r in rows if r is not None], layers
