"""The PLW loss against a naive reference, Transformers' loss, and its own identities."""

import pytest
import torch
from transformers.loss.loss_utils import ForCausalLMLoss

from plw.loss.weighted import normaliser, plw_loss


def naive(logits, labels, weights, smoothing=0.0):
    """Loop-by-token reference: sum_t w_t * ce_t / sum_t w_t over shifted positions."""
    total, norm = 0.0, 0.0
    for b in range(logits.shape[0]):
        for t in range(1, logits.shape[1]):
            if labels[b, t] == -100:
                continue
            logp = torch.log_softmax(logits[b, t - 1].double(), -1)
            nll = -logp[labels[b, t]]
            ce = (1 - smoothing) * nll - smoothing * logp.mean()
            total += weights[b, t].item() * ce
            norm += weights[b, t].item()
    return total / norm


@pytest.fixture
def batch():
    torch.manual_seed(0)
    logits = torch.randn(3, 7, 11)
    labels = torch.randint(0, 11, (3, 7))
    labels[2, 5:] = -100
    completion = torch.zeros(3, 7, dtype=torch.long)
    completion[:, 4:] = 1
    return logits, labels, completion


def weights_for(completion, labels, plw):
    w = torch.where(completion.bool(), 1.0, plw)
    return w * labels.ne(-100)


@pytest.mark.parametrize("plw", [0.0, 0.01, 0.3, 1.0])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_matches_naive_reference(batch, plw, smoothing):
    logits, labels, completion = batch
    w = weights_for(completion, labels, plw)
    got = plw_loss(logits, labels, w, label_smoothing=smoothing)
    assert got.item() == pytest.approx(float(naive(logits, labels, w, smoothing)), rel=1e-5)


def test_plw0_equals_transformers_masked_loss(batch):
    logits, labels, completion = batch
    masked = labels.masked_fill(completion.eq(0), -100)
    expected = ForCausalLMLoss(logits, masked, vocab_size=11)
    got = plw_loss(logits, labels, weights_for(completion, labels, 0.0))
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)


def test_plw1_equals_plain_lm_loss(batch):
    logits, labels, completion = batch
    expected = ForCausalLMLoss(logits, labels, vocab_size=11)
    got = plw_loss(logits, labels, weights_for(completion, labels, 1.0))
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)


def test_normalisers(batch):
    logits, labels, completion = batch
    w = weights_for(completion, labels, 0.1)
    shifted_valid = labels[:, 1:].ne(-100)
    n_completion = (completion[:, 1:].bool() & shifted_valid).sum().item()
    assert normaliser(w, labels, completion, "weight_sum").item() == pytest.approx(w[:, 1:].sum().item())
    assert normaliser(w, labels, completion, "nonzero").item() == shifted_valid.sum().item()
    assert normaliser(w, labels, completion, "completion").item() == n_completion
    # "completion": the completion part's scale does not depend on PLW
    small = plw_loss(
        logits,
        labels,
        weights_for(completion, labels, 1e-9),
        completion_mask=completion,
        normalizer="completion",
    )
    zero = plw_loss(
        logits,
        labels,
        weights_for(completion, labels, 0.0),
        completion_mask=completion,
        normalizer="completion",
    )
    assert small.item() == pytest.approx(zero.item(), rel=1e-6)


def test_weight_sum_is_continuous_at_zero_and_nonzero_jumps(batch):
    logits, labels, completion = batch
    at = {
        n: plw_loss(logits, labels, weights_for(completion, labels, p), normalizer=n).item()
        for n in ("weight_sum", "nonzero")
        for p in (0.0,)
    }
    near = {
        n: plw_loss(logits, labels, weights_for(completion, labels, 1e-6), normalizer=n).item()
        for n in ("weight_sum", "nonzero")
    }
    assert near["weight_sum"] == pytest.approx(at["weight_sum"], rel=1e-4)
    assert abs(near["nonzero"] - at["nonzero"]) > 0.1 * at["nonzero"]


def test_no_weighted_tokens_gives_zero_with_gradient(batch):
    logits, labels, _ = batch
    logits = logits.clone().requires_grad_()
    loss = plw_loss(logits, labels, torch.zeros(labels.shape))
    loss.backward()
    assert loss.item() == 0.0 and torch.all(logits.grad == 0)


def test_explicit_denominator(batch):
    logits, labels, completion = batch
    w = weights_for(completion, labels, 0.5)
    half = plw_loss(logits, labels, w, denominator=2 * normaliser(w, labels))
    assert half.item() == pytest.approx(plw_loss(logits, labels, w).item() / 2, rel=1e-6)
