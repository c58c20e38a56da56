"""Every path of `NextTokenLoss(LossConfig)` is the reference `plw.loss.weighted.plw_loss`.

One tiny random Llama, one batch, and the full matrix: path (full, chunked, and the CUDA kernels cce /
liger where they can run) x normaliser x label smoothing x PLW (0, fractional, 1) x tied or untied
head. Each case compares the divided loss and the gradient of every parameter with `plw_loss` on the
model's own logits. test_next_token.py checks the paths against a loss written out by hand (weight_sum
only) and test_chunked.py the chunked function on its own; this file pins the whole object,
normaliser and division included, and the step normaliser the trainer builds from its parts.
"""

from __future__ import annotations

import pytest
import torch

from plw.loss import kernels
from plw.loss.config import NORMALIZERS, LossConfig
from plw.loss.next_token import NextTokenLoss
from plw.loss.weighted import plw_loss

VOCAB, SEQ = 128, 20
TOL = {"rtol": 1e-5, "atol": 1e-5}
# The kernel libraries' Triton matmuls may round float32 inputs through TF32.
KERNEL_TOL = {"rtol": 2e-3, "atol": 2e-3}


def tiny_llama(tied: bool, device: str = "cpu"):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=tied,
    )  # fmt: skip
    return LlamaForCausalLM(config).to(device)


@pytest.fixture(scope="module", params=[True, False], ids=["tied", "untied"])
def model(request):
    return tiny_llama(request.param)


def make_batch(plw: float, device: str = "cpu") -> dict[str, torch.Tensor]:
    """3 rows with prompts of 8, 12 and 5 tokens (weight plw), completion weight 1, row 2 padded by 4."""
    gen = torch.Generator().manual_seed(2)
    ids = torch.randint(3, VOCAB, (3, SEQ), generator=gen)
    attention = torch.ones_like(ids)
    attention[2, -4:] = 0
    completion = (torch.arange(SEQ) >= torch.tensor([[8], [12], [5]])).long() * attention
    weights = torch.where(completion.bool(), 1.0, plw) * attention
    batch = {
        "input_ids": ids,
        "attention_mask": attention,
        "labels": ids.masked_fill(attention.eq(0), -100),
        "loss_weights": weights,
        "completion_mask": completion,
    }
    return {k: v.to(device) for k, v in batch.items()}


def grads(model, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def reference(model, batch, normalizer: str, eps: float):
    """(loss, gradients) of `plw_loss` on the model's full logits."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    loss = plw_loss(
        logits, batch["labels"], batch["loss_weights"], completion_mask=batch["completion_mask"],
        normalizer=normalizer, label_smoothing=eps,
    )  # fmt: skip
    return loss.detach(), grads(model, loss)


def run_loss(loss_fn: NextTokenLoss, model, batch, denominator=None):
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    return loss_fn(
        model, inputs, batch["labels"], batch["loss_weights"],
        completion_mask=batch["completion_mask"], denominator=denominator,
    )  # fmt: skip


def assert_same(loss, got_grads, ref_loss, ref_grads, tol=TOL) -> None:
    torch.testing.assert_close(loss.detach(), ref_loss, **tol)
    assert got_grads.keys() == ref_grads.keys()
    for name, grad in ref_grads.items():
        torch.testing.assert_close(got_grads[name], grad, **tol, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("plw", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("normalizer", NORMALIZERS)
@pytest.mark.parametrize("impl", ["full", "chunked"])
def test_cpu_paths_equal_the_reference(model, impl, normalizer, eps, plw):
    batch = make_batch(plw)
    ref_loss, ref_grads = reference(model, batch, normalizer, eps)
    config = LossConfig(impl=impl, normalizer=normalizer, label_smoothing=eps, chunk_size=7)
    loss_fn = NextTokenLoss(config)
    result = run_loss(loss_fn, model, batch)
    assert loss_fn.path == impl  # the path under test ran, not a fallback
    assert_same(result.loss, grads(model, result.loss), ref_loss, ref_grads)


def kernel_skip(impl: str, eps: float) -> str | None:
    """Why the kernel path cannot be tested here (NextTokenLoss would fall back to chunked)."""
    if not torch.cuda.is_available():
        return f"{impl} needs a CUDA device"
    return kernels.unavailable(impl, torch.device("cuda"), has_bias=False, label_smoothing=eps)


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
@pytest.mark.parametrize("plw", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("normalizer", NORMALIZERS)
@pytest.mark.parametrize("impl", ["cce", "liger"])
def test_kernel_paths_equal_the_reference(impl, normalizer, eps, plw, tied):
    why = kernel_skip(impl, eps)
    if why is not None:
        pytest.skip(why)
    cuda_model, batch = tiny_llama(tied, "cuda"), make_batch(plw, "cuda")
    ref_loss, ref_grads = reference(cuda_model, batch, normalizer, eps)
    loss_fn = NextTokenLoss(LossConfig(impl=impl, normalizer=normalizer, label_smoothing=eps))
    result = run_loss(loss_fn, cuda_model, batch)
    assert loss_fn.path == impl
    assert_same(result.loss, grads(cuda_model, result.loss), ref_loss, ref_grads, KERNEL_TOL)


@pytest.mark.parametrize("normalizer", NORMALIZERS)
@pytest.mark.parametrize("impl", ["full", "chunked"])
def test_micro_batches_over_the_step_normaliser_equal_one_batch(model, impl, normalizer):
    """What a trainer does under gradient accumulation: the denominator is the sum of every
    micro-batch's `normaliser`, and the micro-batches' losses add up to the whole batch's loss."""
    batch = make_batch(0.3)
    ref_loss, ref_grads = reference(model, batch, normalizer, 0.1)
    loss_fn = NextTokenLoss(LossConfig(impl=impl, normalizer=normalizer, label_smoothing=0.1, chunk_size=7))
    parts = [{k: v[rows] for k, v in batch.items()} for rows in (slice(0, 2), slice(2, 3))]
    step = sum(loss_fn.normaliser(p["labels"], p["loss_weights"], p["completion_mask"]) for p in parts)
    results = [run_loss(loss_fn, model, p, denominator=step) for p in parts]
    for result in results:  # the loss is the weighted sum over the given denominator, not its own
        torch.testing.assert_close(result.loss, result.weighted_sum / step, rtol=0, atol=0)
    total = results[0].loss + results[1].loss
    assert_same(total, grads(model, total), ref_loss, ref_grads)
