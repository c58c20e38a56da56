"""`NextTokenLoss`, the one entry point: every path equals a naive weighted loss, and `plw_loss` is it."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

from plw.loss.config import LossConfig
from plw.loss.next_token import NextTokenLoss
from plw.loss.weighted import normaliser, plw_loss

TOL = {"rtol": 1e-5, "atol": 1e-5}


def tiny_llama(**config):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=96, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, **config,
    )  # fmt: skip
    return LlamaForCausalLM(cfg)


def make_batch(vocab: int, plw: float, cw: float, batch: int = 2, seq: int = 40):
    """A right-padded batch: 60% prompt (weight plw), then completion (weight cw), row 1 padded."""
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(3, vocab, (batch, seq), generator=gen)
    attention = torch.ones_like(ids)
    attention[1, -7:] = 0
    completion = (torch.arange(seq) >= int(0.6 * seq)).long().expand(batch, seq) * attention
    labels = ids.masked_fill(attention.eq(0), -100)
    weights = torch.where(completion.bool(), cw, plw) * attention
    return ids, attention, labels, weights, completion


def naive_loss(model, ids, attention, plw: float, cw: float, completion):
    """The weighted mean NLL written out: sum_t w_t * ce_t / sum_t w_t over predicted tokens."""
    logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1, :]
    ce = F.cross_entropy(logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1), reduction="none")
    real = attention[:, 1:].bool()
    w = (plw * (real & ~completion[:, 1:].bool()) + cw * (real & completion[:, 1:].bool())).reshape(-1)
    return (w * ce).sum() / w.sum(), ce.view(ids.size(0), -1).detach(), real


def grads(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("impl", ["full", "chunked"])
@pytest.mark.parametrize(("plw", "cw"), [(0.0, 1.0), (0.1, 1.0), (1.0, 1.0), (0.1, 0.6)])
def test_every_path_equals_the_naive_loss_and_gradients(stories_model, impl, plw, cw):
    ids, attention, labels, weights, completion = make_batch(stories_model.config.vocab_size, plw, cw)
    ref, ref_nll, real = naive_loss(stories_model, ids, attention, plw, cw, completion)
    ref_grads = grads(stories_model, ref)

    loss_fn = NextTokenLoss(LossConfig(impl=impl, chunk_size=13))
    result = loss_fn(stories_model, {"input_ids": ids, "attention_mask": attention}, labels, weights)
    assert loss_fn.path == impl
    loss = result.weighted_sum / normaliser(weights, labels)
    got_grads = grads(stories_model, loss)
    torch.testing.assert_close(loss, ref.detach(), **TOL)
    assert got_grads.keys() == ref_grads.keys()
    for name, grad in ref_grads.items():
        torch.testing.assert_close(got_grads[name], grad, **TOL, msg=lambda m, n=name: f"{n}: {m}")
    # The per-token NLL is logged for every predicted token, weighted or not, and NaN on padding.
    assert result.nll.shape == ids[:, 1:].shape
    torch.testing.assert_close(result.nll[real], ref_nll[real], **TOL)
    assert result.nll[~real].isnan().all()


def test_plw_loss_is_the_full_path():
    model = tiny_llama()
    ids, attention, labels, weights, completion = make_batch(96, 0.1, 0.8)
    inputs = {"input_ids": ids, "attention_mask": attention}
    with torch.no_grad():
        result = NextTokenLoss(LossConfig(impl="full", label_smoothing=0.1))(model, inputs, labels, weights)
        public = plw_loss(model(**inputs).logits, labels, weights, label_smoothing=0.1)
    assert torch.equal(public, result.weighted_sum / normaliser(weights, labels))


@pytest.mark.parametrize("impl", ["full", "chunked"])
def test_label_smoothing_changes_the_loss_not_the_logged_nll(impl):
    model = tiny_llama()
    ids, attention, labels, weights, _ = make_batch(96, 0.1, 1.0)
    inputs = {"input_ids": ids, "attention_mask": attention}
    with torch.no_grad():
        plain = NextTokenLoss(LossConfig(impl=impl))(model, inputs, labels, weights)
        smooth = NextTokenLoss(LossConfig(impl=impl, label_smoothing=0.2))(model, inputs, labels, weights)
        logits = model(**inputs).logits[:, :-1, :]
    ce = F.cross_entropy(logits.transpose(1, 2), labels[:, 1:], reduction="none", label_smoothing=0.2)
    torch.testing.assert_close(smooth.weighted_sum, (ce * weights[:, 1:]).sum(), **TOL)
    assert not torch.allclose(smooth.weighted_sum, plain.weighted_sum)
    torch.testing.assert_close(smooth.nll, plain.nll, equal_nan=True, **TOL)


def test_fused_paths_hide_the_hidden_states_and_restore_the_head():
    model = tiny_llama()
    head = model.get_output_embeddings()
    ids, attention, labels, weights, _ = make_batch(96, 0.1, 1.0)
    result = NextTokenLoss(LossConfig(impl="chunked"))(model, {"input_ids": ids}, labels, weights)
    assert result.outputs.logits is None
    assert model.get_output_embeddings() is head


def test_path_is_chosen_once_with_a_logged_fallback(caplog):
    model = tiny_llama()
    model.config.logit_scale = 2.0  # a logit transform: the plain head is not the model's output
    loss_fn = NextTokenLoss(LossConfig(impl="auto"))
    with caplog.at_level(logging.WARNING, logger="plw.loss"):
        assert loss_fn.path_for(model) == "full"
    assert "logit_scale" in caplog.text
    model.config.logit_scale = 1.0
    assert loss_fn.path_for(model) == "full"  # chosen once per model, not per call
    assert NextTokenLoss(LossConfig(impl="auto")).path_for(model) == "chunked"
    model.config.logit_scale = 2.0
    with pytest.raises(ValueError, match="'chunked' is not possible"):
        NextTokenLoss(LossConfig(impl="chunked")).path_for(model)
