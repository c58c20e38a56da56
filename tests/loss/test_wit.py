"""Weighted Instruction Tuning (WIT, Chatterjee et al., TACL 2025) is plw's "nonzero" normaliser
with a prompt weight and a completion weight: checked on the real stories260K model against the
formula written out from a plain forward pass.

    loss = sum_t (w_p * 1[t in prompt] + w_r * 1[t in response]) * CE_t / #{t : weight_t != 0}
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import TrainingArguments

from plw.data.load import load_records
from plw.data.tokenize import tokenize_records
from plw.models import load_model
from plw.training.trainer import PLWTrainer


@pytest.fixture(scope="module")
def features(stories_tokenizer, alpaca_path):
    records = load_records(str(alpaca_path), limit=12)
    feats, _ = tokenize_records(
        records, stories_tokenizer, prompt_loss_weight=1.0, max_length=96, skip_bad_records=True
    )
    # Only ids and the completion mask: the trainer's collator builds the weights from (w_p, w_r).
    return [{"input_ids": f["input_ids"], "completion_mask": f["completion_mask"]} for f in feats[:6]]


def wit_loss(model, batch, w_p: float, w_r: float) -> float:
    """The WIT formula in float64 from the model's logits; prompt/response from the completion mask."""
    ids, attention, completion = batch["input_ids"], batch["attention_mask"], batch["completion_mask"]
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1, :].double()
    ce = F.cross_entropy(logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1), reduction="none")
    real = attention[:, 1:].reshape(-1).bool()
    response = real & completion[:, 1:].reshape(-1).bool()
    prompt = real & ~response
    weight = w_p * prompt.double() + w_r * response.double()
    return float((weight * ce).sum() / weight.ne(0).sum())


@pytest.mark.parametrize("impl", ["auto", "full"])
@pytest.mark.parametrize(("w_p", "w_r"), [(0.0, 1.0), (0.2, 0.8), (1.0, 0.5)])
def test_nonzero_normaliser_is_the_wit_loss(
    stories_path, stories_tokenizer, features, tmp_path, impl, w_p, w_r
):
    model = load_model(str(stories_path))
    trainer = PLWTrainer(
        model=model,
        args=TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True),
        processing_class=stories_tokenizer,
        prompt_loss_weight=w_p,
        completion_loss_weight=w_r,
        normalizer="nonzero",
        loss_impl=impl,
    )
    batch = trainer.data_collator(features)
    expected = wit_loss(model, batch, w_p, w_r)
    loss = trainer.compute_loss(model, dict(batch))
    assert trainer._path(model) == ("chunked" if impl == "auto" else "full")
    assert loss.item() == pytest.approx(expected, rel=1e-6, abs=1e-6)
