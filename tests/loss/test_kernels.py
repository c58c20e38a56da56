"""The GPU kernel backends: when they are refused, and that plw's weighting around them is exact.

There is no CUDA device here, so the libraries' kernels never run in these tests. What runs is
everything plw adds around them: the reasons for falling back, and the weighting, row selection and
logging of `chunked_weighted_ce(..., token_ce=kernel)`, with the kernel replaced by an exact
per-token cross-entropy that has the libraries' `reduction="none"` contract.
"""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

from plw.loss import kernels
from plw.loss.chunked import chunked_weighted_ce
from plw.loss.kernels import unavailable

TOL = {"rtol": 1e-5, "atol": 1e-5}


def exact_token_ce(hidden, weight, bias, targets, eps):
    """What both kernels return with reduction='none': per-token CE of hidden @ W.T + b, 0 where -100."""
    logits = F.linear(hidden, weight, bias).float()
    return F.cross_entropy(logits, targets, reduction="none", label_smoothing=eps)


@pytest.fixture
def fake_kernels(monkeypatch):
    calls = []

    def kernel(*args):
        calls.append(args[0].shape[0])
        return exact_token_ce(*args)

    monkeypatch.setitem(kernels.KERNELS, "cce", kernel)
    monkeypatch.setitem(kernels.KERNELS, "liger", kernel)
    return calls


def problem(plw: float, n: int = 40, h: int = 12, v: int = 30):
    gen = torch.Generator().manual_seed(1)
    hidden = torch.randn(n, h, generator=gen).requires_grad_()
    weight = (torch.randn(v, h, generator=gen) / h**0.5).requires_grad_()
    bias = torch.randn(v, generator=gen).requires_grad_()
    targets = torch.randint(0, v, (n,), generator=gen)
    targets[::7] = -100
    weights = torch.where(torch.arange(n) < 28, plw, 1.0) * targets.ne(-100)
    return hidden, weight, bias, targets, weights


def test_refused_without_cuda_with_the_reason():
    why = unavailable("cce", torch.device("cpu"), has_bias=False, label_smoothing=0.0)
    assert why is not None and "CUDA" in why
    assert "unknown backend" in unavailable("xla", torch.device("cpu"), has_bias=False, label_smoothing=0.0)


def test_cce_refuses_bias_and_label_smoothing(monkeypatch):
    monkeypatch.setattr(kernels.importlib.util, "find_spec", lambda name: object())
    cuda = torch.device("cuda")
    assert unavailable("cce", cuda, has_bias=False, label_smoothing=0.0) is None
    assert "bias" in unavailable("cce", cuda, has_bias=True, label_smoothing=0.0)
    assert unavailable("liger", cuda, has_bias=True, label_smoothing=0.1) is None
    monkeypatch.setattr(kernels.importlib.util, "find_spec", lambda name: None)
    assert "pip install liger-kernel" in unavailable("liger", cuda, has_bias=False, label_smoothing=0.0)


@pytest.mark.parametrize("plw", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_weighting_around_a_kernel_equals_the_chunked_loss(fake_kernels, plw, eps):
    hidden, weight, bias, targets, weights = problem(plw)
    ref_total, ref_nll = chunked_weighted_ce(hidden, weight, bias, targets, weights, label_smoothing=eps)
    ref_grads = torch.autograd.grad(ref_total, (hidden, weight, bias))
    liger = kernels.KERNELS["liger"]
    total, nll = chunked_weighted_ce(
        hidden, weight, bias, targets, weights, label_smoothing=eps, token_ce=liger
    )
    grads = torch.autograd.grad(total, (hidden, weight, bias))
    torch.testing.assert_close(total, ref_total, **TOL)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, **TOL)
    scored = targets.ne(-100)
    assert torch.isnan(nll[~scored]).all()
    if not eps:  # the kernels return only the smoothed loss, which is what is logged then
        torch.testing.assert_close(nll[scored], ref_nll[scored], **TOL)
    # Weight-0 tokens are scored apart, without gradients: the differentiable call sees only the rest.
    assert fake_kernels[0] == int(weights.ne(0).sum())


def test_trainer_falls_back_to_chunked_with_a_logged_reason(stories_path, caplog, tmp_path):
    from transformers import TrainingArguments

    from plw.models import load_model
    from plw.training.trainer import PLWTrainer

    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    trainer = PLWTrainer(model=load_model(str(stories_path)), args=args, loss_impl="cce")
    with caplog.at_level(logging.WARNING, logger="plw.loss"):
        assert trainer._path(trainer.model) == "chunked"
    assert "instead of cce" in caplog.text and "CUDA" in caplog.text


def test_trainer_uses_the_kernel_when_it_can_run(stories_path, fake_kernels, monkeypatch, tmp_path):
    from transformers import TrainingArguments

    from plw.models import load_model
    from plw.training.trainer import PLWTrainer

    monkeypatch.setattr(kernels, "unavailable", lambda *a, **k: None)
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    model = load_model(str(stories_path))
    ids = torch.randint(3, 500, (2, 24), generator=torch.Generator().manual_seed(0))
    weights = torch.cat([torch.full((2, 16), 0.1), torch.ones(2, 8)], dim=1)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids, "loss_weights": weights}
    losses = {}
    for impl in ("liger", "chunked"):
        trainer = PLWTrainer(model=model, args=args, loss_impl=impl)
        assert trainer._path(model) == impl
        losses[impl] = trainer.compute_loss(model, dict(batch))
    assert fake_kernels, "the kernel path did not call the kernel"
    torch.testing.assert_close(losses["liger"], losses["chunked"], **TOL)
