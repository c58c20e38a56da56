"""Mechanism measures: loss RSD, weight distances (full and LoRA), validation losses, memorisation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from sweep_support import shared

from plw.experiment.mechanisms import layer_group, loss_rsd, memorization_bleu, part_losses, weight_distance
from plw.experiment.runner import score_rows


def test_loss_rsd_uses_logged_losses_only():
    history = [{"loss": 2.0, "step": 1}, {"loss": 4.0, "step": 2}, {"loss": 3.0}, {"train_loss": 99.0}]
    assert loss_rsd(history) == pytest.approx(np.std([2, 4, 3], ddof=1) / 3.0)
    assert loss_rsd([{"loss": 1.0}]) is None


def test_layer_groups():
    assert layer_group("model.layers.12.mlp.up_proj.weight") == "layer_12"
    assert layer_group("transformer.h.3.attn.c_attn.weight") == "layer_3"
    assert layer_group("model.embed_tokens.weight") == "other"


def test_full_weight_distance_by_hand(tmp_path):
    base = {"model.layers.0.w.weight": torch.ones(2, 2), "model.layers.1.w.weight": torch.ones(3),
            "model.norm.weight": torch.full((4,), 2.0)}  # fmt: skip
    tuned = {**base, "model.layers.0.w.weight": torch.ones(2, 2) + torch.tensor([[3.0, 0], [0, 4.0]])}
    for name, tensors in (("base", base), ("tuned", tuned)):
        (tmp_path / name).mkdir()
        save_file(tensors, str(tmp_path / name / "model.safetensors"))
    out = weight_distance(str(tmp_path / "base"), tmp_path / "tuned")
    assert out["weight_l2"] == pytest.approx(5.0)
    assert out["weight_rel_distance"] == pytest.approx(5.0 / math.sqrt(4 + 3 + 16))
    assert out["weight_l2.layer_0"] == pytest.approx(5.0) and out[
        "weight_rel_distance.layer_0"
    ] == pytest.approx(2.5)
    assert out["weight_l2.layer_1"] == 0.0 and out["weight_l2.other"] == 0.0


def test_lora_distance_equals_merged_model_distance(tmp_path, stories_path):
    from peft import LoraConfig, get_peft_model

    from plw.models import load_model

    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "down_proj"], init_lora_weights=False)
    model = get_peft_model(load_model(str(stories_path)), config)
    model.save_pretrained(str(tmp_path / "adapter"))
    merged = model.merge_and_unload().state_dict()
    base = load_model(str(stories_path)).state_dict()
    delta = {k: (merged[k].double() - base[k].double()).pow(2).sum().item() for k in base}
    out = weight_distance(str(stories_path), tmp_path / "adapter")
    assert out["weight_l2"] == pytest.approx(math.sqrt(sum(delta.values())), rel=1e-6)
    layer2 = sum(v for k, v in delta.items() if ".layers.2." in k)
    assert out["weight_l2.layer_2"] == pytest.approx(math.sqrt(layer2), rel=1e-6)
    total_base = sum(v.double().pow(2).sum().item() for k, v in base.items() if k != "lm_head.weight")
    assert out["weight_rel_distance"] == pytest.approx(out["weight_l2"] / math.sqrt(total_base), rel=1e-6)


@pytest.fixture(scope="module")
def stories_examples(stories_tokenizer):
    from plw.data.load import load_records
    from plw.data.tokenize import encode_records

    records = load_records(str(shared("instruct/alpaca_5000.json")), limit=12)
    examples, _ = encode_records(records, stories_tokenizer, max_length=128, skip_bad_records=True)
    return examples


def test_part_losses_match_hf_loss_on_completion_tokens(stories_path, stories_tokenizer, stories_examples):
    from plw.models import load_model

    model = load_model(str(stories_path)).eval()
    example = stories_examples[0]
    prompt, completion = part_losses(model, [example], stories_tokenizer.pad_token_id)
    ids = torch.tensor([example["input_ids"]])
    mask = torch.tensor([example["completion_mask"]]).bool()
    with torch.no_grad():
        expected_completion = model(input_ids=ids, labels=ids.masked_fill(~mask, -100)).loss.item()
        prompt_labels = ids.masked_fill(mask, -100)
        prompt_labels[0, 0] = -100  # the first token is never predicted
        expected_prompt = model(input_ids=ids, labels=prompt_labels).loss.item()
    assert completion == pytest.approx(expected_completion, rel=1e-5)
    assert prompt == pytest.approx(expected_prompt, rel=1e-5)
    batched = part_losses(model, stories_examples[:6], stories_tokenizer.pad_token_id)
    assert all(v is not None and v > 0 for v in batched)


def naive_part_losses(model, examples: list[dict]) -> tuple[float, float]:
    """The reference: each example alone (no padding), float64 cross-entropy of every predicted token
    (t >= 1) against the logits at t - 1, averaged over prompt and over completion tokens."""
    import torch.nn.functional as F

    sums, counts = [0.0, 0.0], [0, 0]
    for example in examples:
        ids = torch.tensor([example["input_ids"]])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, :-1].double()
        ce = F.cross_entropy(logits, ids[0, 1:], reduction="none")
        for t, part in enumerate(example["completion_mask"][1:]):
            sums[part] += float(ce[t])
            counts[part] += 1
    return sums[0] / counts[0], sums[1] / counts[1]


def test_part_losses_equal_a_naive_reference_on_a_padded_batch(
    stories_path, stories_tokenizer, stories_examples
):
    from plw.models import load_model

    model = load_model(str(stories_path)).eval()
    # Six lengths (prompts cut from the left by k tokens), so the batch is padded.
    examples = [
        {"input_ids": e["input_ids"][k:], "completion_mask": e["completion_mask"][k:]}
        for e, k in zip(stories_examples, (0, 7, 19, 30, 44, 60), strict=False)
    ]
    assert len({len(e["input_ids"]) for e in examples}) == 6
    prompt, completion = part_losses(model, examples, stories_tokenizer.pad_token_id)
    expected_prompt, expected_completion = naive_part_losses(model, examples)
    assert prompt == pytest.approx(expected_prompt, rel=1e-5)
    assert completion == pytest.approx(expected_completion, rel=1e-5)


def test_memorization_bleu_is_deterministic(stories_path, stories_tokenizer, stories_examples):
    from plw.models import load_model

    model = load_model(str(stories_path)).eval()
    first = memorization_bleu(model, stories_tokenizer, stories_examples, n=3, max_new_tokens=8)
    assert 0.0 <= first <= 100.0
    assert memorization_bleu(model, stories_tokenizer, stories_examples, n=3, max_new_tokens=8) == first


def test_score_rows_pairs_stderr():
    rows = score_rows(
        {"arc_easy": {"acc": 0.5, "acc_stderr": 0.1, "acc_norm": 0.6, "acc_norm_stderr": float("nan")}}
    )
    assert rows == [
        {"task": "arc_easy", "metric": "acc", "value": 0.5, "stderr": 0.1},
        {"task": "arc_easy", "metric": "acc_norm", "value": 0.6, "stderr": None},
    ]
