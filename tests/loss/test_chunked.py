"""The chunked weighted loss equals the reference loss on full logits, in value and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from plw.loss.chunked import chunked_weighted_ce
from plw.loss.head import hidden_states_instead_of_logits, supports_chunked_loss
from plw.loss.weighted import shift_targets, token_ce

TOL = {"rtol": 1e-5, "atol": 1e-5}


# ---- synthetic tensors -------------------------------------------------------------------------


def _problem(plw: float, *, n: int = 45, h: int = 16, v: int = 50, bias: bool = True, seed: int = 0):
    """Hidden states, head and targets with prompt (weight plw), completion (1) and ignored rows."""
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, h, generator=gen).requires_grad_()
    weight = (torch.randn(v, h, generator=gen) / h**0.5).requires_grad_()
    b = torch.randn(v, generator=gen).requires_grad_() if bias else None
    targets = torch.randint(0, v, (n,), generator=gen)
    targets[::6] = -100
    prompt = torch.arange(n) < int(0.7 * n)
    weights = torch.where(prompt, plw, 1.0) * targets.ne(-100)
    return hidden, weight, b, targets, weights


def _params(hidden, weight, bias):
    return [p for p in (hidden, weight, bias) if p is not None]


def _reference(hidden, weight, bias, targets, weights, eps=0.0):
    """(sum_i w_i ce_i, its gradients, plain per-token NLL) through full logits."""
    logits = F.linear(hidden, weight, bias)
    total = (token_ce(logits, targets, eps) * weights).sum()
    grads = torch.autograd.grad(total, _params(hidden, weight, bias))
    return total.detach(), grads, token_ce(logits.detach(), targets)


@pytest.mark.parametrize("plw", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("chunk_size", [5, 9, 45, 1024])  # 9 divides n=45, 5 too; 1024 is one chunk
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_matches_reference_loss_and_grads(plw, chunk_size, eps):
    hidden, weight, bias, targets, weights = _problem(plw)
    ref, ref_grads, ref_nll = _reference(hidden, weight, bias, targets, weights, eps)
    total, nll = chunked_weighted_ce(
        hidden, weight, bias, targets, weights, label_smoothing=eps, chunk_size=chunk_size
    )
    grads = torch.autograd.grad(total, _params(hidden, weight, bias))
    torch.testing.assert_close(total, ref, **TOL)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, **TOL)
    valid = targets.ne(-100)
    torch.testing.assert_close(nll[valid], ref_nll[valid], **TOL)
    assert nll[~valid].isnan().all()


@pytest.mark.parametrize("chunk_size", [4, 7])
def test_no_bias_and_scaled_backward(chunk_size):
    hidden, weight, _, targets, weights = _problem(0.1, bias=False)
    ref, ref_grads, _ = _reference(hidden, weight, None, targets, weights)
    total, _ = chunked_weighted_ce(hidden, weight, None, targets, weights, chunk_size=chunk_size)
    grads = torch.autograd.grad(total / 7.0, [hidden, weight])  # the trainer divides by the normaliser
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want / 7.0, **TOL)


def test_zero_weight_rows_are_scored_only_on_request():
    hidden, weight, bias, targets, weights = _problem(0.0)
    _, _, ref_nll = _reference(hidden, weight, bias, targets, weights)
    zero = targets.ne(-100) & weights.eq(0)
    _, scored = chunked_weighted_ce(hidden, weight, bias, targets, weights, chunk_size=8)
    _, skipped = chunked_weighted_ce(
        hidden, weight, bias, targets, weights, chunk_size=8, score_zero_weight=False
    )
    torch.testing.assert_close(scored[zero], ref_nll[zero], **TOL)
    assert skipped[zero].isnan().all()
    torch.testing.assert_close(skipped[~zero & targets.ne(-100)], ref_nll[~zero & targets.ne(-100)], **TOL)


def test_zero_weight_rows_get_exactly_zero_gradient():
    hidden, weight, bias, targets, weights = _problem(0.0)
    total, _ = chunked_weighted_ce(hidden, weight, bias, targets, weights, chunk_size=8)
    (grad,) = torch.autograd.grad(total, [hidden])
    assert grad[weights.eq(0)].eq(0).all()
    assert grad[weights.ne(0)].abs().sum() > 0


def test_nothing_weighted_gives_zero_with_a_gradient_path():
    hidden, weight, bias, targets, _ = _problem(1.0)
    total, nll = chunked_weighted_ce(hidden, weight, bias, targets, torch.zeros(len(targets)))
    assert total.item() == 0.0 and total.requires_grad
    grads = torch.autograd.grad(total, _params(hidden, weight, bias))
    assert all(g.eq(0).all() for g in grads)
    assert nll[targets.ne(-100)].isfinite().all()


def test_frozen_head_and_no_grad_mode():
    hidden, weight, bias, targets, weights = _problem(0.1)
    ref, ref_grads, _ = _reference(hidden, weight, bias, targets, weights)
    total, _ = chunked_weighted_ce(hidden, weight.detach(), bias.detach(), targets, weights, chunk_size=8)
    (grad,) = torch.autograd.grad(total, [hidden])
    torch.testing.assert_close(grad, ref_grads[0], **TOL)
    with torch.no_grad():
        total, _ = chunked_weighted_ce(hidden, weight, bias, targets, weights, chunk_size=8)
    assert not total.requires_grad
    torch.testing.assert_close(total, ref, **TOL)


def test_retained_graph_backward_twice():
    hidden, weight, bias, targets, weights = _problem(0.1)
    total, _ = chunked_weighted_ce(hidden, weight, bias, targets, weights, chunk_size=8)
    first = torch.autograd.grad(total, [weight], retain_graph=True)[0]
    second = torch.autograd.grad(total * 2, [weight])[0]
    torch.testing.assert_close(second, 2 * first)


def test_bfloat16_inputs_compute_in_float32_and_return_input_dtypes():
    hidden, weight, bias, targets, weights = _problem(0.1, h=32, v=64)
    low = [p.detach().bfloat16().requires_grad_() for p in (hidden, weight, bias)]
    ref, ref_grads, _ = _reference(*[p.detach().float().requires_grad_() for p in low], targets, weights)
    total, _ = chunked_weighted_ce(*low, targets, weights, chunk_size=8)
    grads = torch.autograd.grad(total, low)
    assert total.dtype == torch.float32
    torch.testing.assert_close(total, ref, **TOL)  # fp32 math on the same bf16 values
    for got, want, p in zip(grads, ref_grads, low, strict=True):
        assert got.dtype == p.dtype == torch.bfloat16
        torch.testing.assert_close(got.float(), want, rtol=1e-2, atol=1e-2)


def test_autocast_does_not_lower_the_precision():
    hidden, weight, bias, targets, weights = _problem(0.1)
    ref, ref_grads, _ = _reference(hidden, weight, bias, targets, weights)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        total, _ = chunked_weighted_ce(hidden, weight, bias, targets, weights, chunk_size=8)
        grads = torch.autograd.grad(total, _params(hidden, weight, bias))
    torch.testing.assert_close(total, ref, **TOL)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, **TOL)


def test_rejects_bad_shapes():
    hidden, weight, bias, targets, weights = _problem(0.1)
    with pytest.raises(ValueError, match="head_weight"):
        chunked_weighted_ce(hidden, weight.t(), bias, targets, weights)
    with pytest.raises(ValueError, match="targets"):
        chunked_weighted_ce(hidden, weight, bias, targets[:-1], weights)
    with pytest.raises(ValueError, match="chunk_size"):
        chunked_weighted_ce(hidden, weight, bias, targets, weights, chunk_size=0)


# ---- head swapping on small transformers models ------------------------------------------------


def _tiny_llama(tied: bool, **config):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=96,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        tie_word_embeddings=tied,
        **config,
    )
    return LlamaForCausalLM(cfg)


def _batch(vocab: int, plw: float, batch: int = 2, seq: int = 40, seed: int = 1):
    """input_ids, labels (with -100 padding), loss_weights (plw on 75% prompt, 0 on padding)."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (batch, seq), generator=gen)
    labels = ids.clone()
    labels[1, -7:] = -100
    weights = torch.where(torch.arange(seq) < int(0.75 * seq), plw, 1.0).expand(batch, seq).clone()
    weights[labels.eq(-100)] = 0
    return ids, labels, weights


def _grads(model, ids, labels, loss_weights, *, chunked: bool, chunk_size: int = 16, eps: float = 0.0):
    """Every trainable parameter's gradient of the normalised PLW loss, through either path."""
    model.zero_grad(set_to_none=True)
    targets, weights = shift_targets(labels, loss_weights)
    if chunked:
        with hidden_states_instead_of_logits(model) as (head_weight, head_bias):
            hidden = model(input_ids=ids, use_cache=False).logits
        flat = hidden[:, :-1, :].reshape(-1, hidden.size(-1))
        total, _ = chunked_weighted_ce(
            flat, head_weight, head_bias, targets.reshape(-1), weights.reshape(-1),
            label_smoothing=eps, chunk_size=chunk_size,
        )  # fmt: skip
    else:
        logits = model(input_ids=ids, use_cache=False).logits
        total = (token_ce(logits[:, :-1, :], targets, eps) * weights).sum()
    (total / weights.sum()).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    assert grads and all(g is not None for g in grads.values())
    return total.detach(), grads


def _assert_same_grads(model, plw: float, **kwargs):
    ids, labels, weights = _batch(model.config.vocab_size, plw)
    ref_loss, ref = _grads(model, ids, labels, weights, chunked=False, **kwargs)
    loss, got = _grads(model, ids, labels, weights, chunked=True, **kwargs)
    torch.testing.assert_close(loss, ref_loss, **TOL)
    assert got.keys() == ref.keys()
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], **TOL, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("tied", [True, False])
def test_tiny_llama_all_parameter_grads(tied):
    model = _tiny_llama(tied)
    assert supports_chunked_loss(model) == (True, "")
    _assert_same_grads(model, 0.1, eps=0.1)


def test_tiny_llama_with_gradient_checkpointing():
    model = _tiny_llama(tied=True)
    model.gradient_checkpointing_enable()
    model.train()
    _assert_same_grads(model, 0.1)


def test_head_is_swapped_only_inside_the_block_even_on_error():
    model = _tiny_llama(tied=True)
    head = model.lm_head
    with hidden_states_instead_of_logits(model) as (weight, bias):
        assert weight is head.weight and bias is None
        assert model.lm_head is not head
        out = model(input_ids=torch.tensor([[1, 2, 3]])).logits
        assert out.shape == (1, 3, 16)
    assert model.lm_head is head
    with pytest.raises(RuntimeError, match="boom"), hidden_states_instead_of_logits(model):
        raise RuntimeError("boom")
    assert model.lm_head is head
    assert dict(model.named_parameters()).keys() == dict(_tiny_llama(tied=True).named_parameters()).keys()


def test_untied_head_works_under_ddp_with_unused_parameter_search(tmp_path):
    """DDP(find_unused_parameters=True), the Trainer's default, must see the head as used."""
    import torch.distributed as dist

    if dist.is_initialized():
        pytest.skip("a process group already exists")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        model = _tiny_llama(tied=False)
        ref = _grads(model, *_batch(96, 0.1), chunked=False)[1]
        ddp = nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
        for _ in range(2):  # DDP raises in the second step if the head was marked unused in the first
            got = _grads(ddp, *_batch(96, 0.1), chunked=True)[1]
        for name, grad in ref.items():
            torch.testing.assert_close(got["module." + name], grad, **TOL)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({"final_logit_softcapping": 30.0}, "final_logit_softcapping"),
        ({"logit_scale": 0.5}, "logit_scale"),
    ],
)
def test_logit_transforms_are_not_supported(config, reason):
    model = _tiny_llama(tied=True)
    for key, value in config.items():
        setattr(model.config, key, value)
    ok, why = supports_chunked_loss(model)
    assert not ok and reason in why


def test_non_linear_and_lora_heads_are_not_supported():
    from peft import LoraConfig, get_peft_model

    model = _tiny_llama(tied=False)
    model.lm_head = nn.Sequential(nn.Linear(16, 96))
    assert supports_chunked_loss(model)[0] is False
    peft_model = get_peft_model(
        _tiny_llama(tied=False), LoraConfig(r=2, target_modules=["q_proj", "lm_head"])
    )
    ok, why = supports_chunked_loss(peft_model)
    assert not ok and "Linear" in why and "not a plain" in why


# ---- the real shared model ---------------------------------------------------------------------


@pytest.mark.parametrize(("plw", "chunk_size"), [(0.0, 1024), (0.1, 24), (1.0, 13)])
def test_stories260k_every_parameter_grad(stories_model, plw, chunk_size):
    assert stories_model.lm_head.weight is stories_model.model.embed_tokens.weight  # tied
    assert supports_chunked_loss(stories_model) == (True, "")
    _assert_same_grads(stories_model, plw, chunk_size=chunk_size)


def test_stories260k_lora_grads(stories_path):
    from peft import LoraConfig, get_peft_model

    from plw.models import load_model

    # A fresh copy: get_peft_model freezes and rewires the model it is given.
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"])
    lora = get_peft_model(load_model(str(stories_path)), config)
    for module in lora.modules():  # LoRA B starts at 0, which would hide errors in A's gradient
        if hasattr(module, "lora_B"):
            nn.init.normal_(module.lora_B["default"].weight, std=0.1)
    assert supports_chunked_loss(lora) == (True, "")
    _assert_same_grads(lora, 0.1, eps=0.1)
