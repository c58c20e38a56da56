"""Shared-prefix scoring equals a plain forward pass per sequence, on the real stories260K model."""

import itertools
import random

import pytest
import torch

from plw.errors import PLWError
from plw.evaluation import scoring
from plw.evaluation.scoring import score_groups
from plw.evaluation.scoring_plan import Choice, make_choice, pack, plan_units


def naive_score(model, choice: Choice) -> tuple[float, bool]:
    """log P(continuation | context) from one unpadded forward pass over the whole sequence."""
    with torch.inference_mode():
        logits = model(torch.tensor([choice.seq[:-1]])).logits[0].float()
    logp = torch.log_softmax(logits, -1)
    positions = range(choice.first, len(choice.seq) - 1)
    total = sum(logp[p, choice.seq[p + 1]].item() for p in positions)
    greedy = all(logits[p].argmax().item() == choice.seq[p + 1] for p in positions)
    return total, greedy


def greedy_tokens(model, context: list[int], n: int) -> list[int]:
    out = list(context)
    with torch.inference_mode():
        for _ in range(n):
            out.append(int(model(torch.tensor([out])).logits[0, -1].argmax()))
    return out[len(context) :]


@pytest.fixture(scope="module")
def groups(stories):
    rnd = random.Random(0)
    tok = stories.tokenizer
    words = [
        "the",
        "cat",
        "sat",
        "on",
        "a",
        "mat",
        "and",
        "then",
        "dog",
        "ran",
        "to",
        "park",
        "with",
        "big",
        "red",
    ]

    def text(n):
        return " ".join(rnd.choice(words) for _ in range(n))

    groups = []
    for _ in range(6):  # shared context, continuations of mixed lengths, some sharing a prefix
        ctx = tok.encode("Once upon a time " + text(rnd.randint(1, 12)))
        common = tok.encode(" " + text(3), add_special_tokens=False)
        conts = [
            common + tok.encode(" " + text(rnd.randint(1, 6)), add_special_tokens=False) for _ in range(3)
        ]
        conts.append(tok.encode(" " + text(rnd.randint(1, 4)), add_special_tokens=False))
        groups.append([(ctx, c) for c in conts])
    # WinoGrande-like: contexts differ after a shared start, the continuation is shared.
    start = tok.encode("Lily gave the ball to")
    rest = tok.encode(" because she was kind", add_special_tokens=False)
    groups.append(
        [
            (start + tok.encode(" Tom", add_special_tokens=False), rest),
            (start + tok.encode(" Sue", add_special_tokens=False), rest),
        ]
    )
    # A lone request, and a continuation the model would produce itself (is_greedy True).
    ctx = tok.encode("One day, a little girl")
    groups.append([(ctx, greedy_tokens(stories.model, ctx, 4))])
    return groups


@pytest.mark.parametrize(("max_tokens", "chunk"), [(512, 4096), (64, 40), (10_000, 8)])
def test_matches_plain_forward(stories, groups, monkeypatch, max_tokens, chunk):
    monkeypatch.setattr(scoring, "CHUNK_TOKENS", chunk)
    choices = [[make_choice(c, x, 512) for c, x in g] for g in groups]
    got = score_groups(stories.model, choices, max_tokens, pad_id=0)
    for g, row in zip(choices, got, strict=True):
        for choice, (lp, greedy) in zip(g, row, strict=True):
            want_lp, want_greedy = naive_score(stories.model, choice)
            assert lp == pytest.approx(want_lp, abs=1e-3)
            assert greedy == want_greedy
    assert got[-1][0][1] is True  # the model's own continuation is greedy


def test_left_truncation_as_lm_eval(stories, groups):
    # With a 20-token window the choices keep different tails and may share no prefix at all.
    choices = [[make_choice(c, x, 20) for c, x in g] for g in groups[:3]]
    assert all(len(c.seq) <= 21 for g in choices for c in g)
    assert any(len(c + x) > 21 for g in groups[:3] for c, x in g)  # some were truncated
    got = score_groups(stories.model, choices, 256, pad_id=0)
    for g, row in zip(choices, got, strict=True):
        for choice, (lp, _) in zip(g, row, strict=True):
            assert lp == pytest.approx(naive_score(stories.model, choice)[0], abs=1e-3)


def test_plan_units_shares_prefix_and_splits_disjoint():
    a, b = Choice([1, 2, 3, 4], 1), Choice([1, 2, 5, 6], 2)
    units = plan_units([[a, b], [Choice([7, 8], 1), Choice([9, 8], 1)]])
    assert units[0].prefix == [1, 2] and units[0].keys == [(0, 0), (0, 1)]
    assert [u.keys for u in units[1:]] == [[(1, 0)], [(1, 1)]]  # no shared token: one unit each


def test_make_choice_errors():
    with pytest.raises(PLWError, match="empty continuation"):
        make_choice([1], [], 10)
    with pytest.raises(PLWError, match="exceeds"):
        make_choice([1], [2] * 11, 10)


def _cost(batches, lengths, call_cost):
    return sum(len(b) * max(lengths[i] for i in b) + call_cost for b in batches)


@pytest.mark.parametrize("seed", range(5))
def test_pack_is_optimal_and_within_budget(seed):
    rnd = random.Random(seed)
    lengths = [rnd.randint(1, 40) for _ in range(7)]
    batches = pack(lengths, max_tokens=80, call_cost=10)
    assert sorted(i for b in batches for i in b) == list(range(7))
    assert all(len(b) * max(lengths[i] for i in b) <= 80 or len(b) == 1 for b in batches)
    # Brute force over cuts of the sorted order.
    order = sorted(range(7), key=lambda i: -lengths[i])
    best = min(
        _cost([order[a:b] for a, b in zip((0, *cuts), (*cuts, 7), strict=True)], lengths, 10)
        for r in range(7)
        for cuts in itertools.combinations(range(1, 7), r)
        if all(
            (b - a) * lengths[order[a]] <= 80 or b - a == 1
            for a, b in zip((0, *cuts), (*cuts, 7), strict=True)
        )
    )
    assert _cost(batches, lengths, 10) == best


def _tiny_falcon_h1(multiplier: float):
    """A randomly initialised FalconH1, whose forward multiplies the logits by `lm_head_multiplier`."""
    transformers = pytest.importorskip("transformers")
    config = transformers.FalconH1Config(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, mamba_d_ssm=32, mamba_n_heads=4, mamba_d_head=8, mamba_n_groups=1,
        mamba_d_state=8, mamba_chunk_size=16, max_position_embeddings=64, lm_head_multiplier=multiplier,
    )  # fmt: skip
    torch.manual_seed(0)
    return transformers.FalconH1ForCausalLM(config).eval()


def test_post_processed_logits_are_scored_as_the_forward_pass():
    """One rule (plw.loss.head.logit_transform) decides, for training and scoring, whether the plain
    head gives the model's logits; a multiplier the old scoring list missed gave wrong scores."""
    model = _tiny_falcon_h1(3.0)
    rnd = random.Random(1)
    context, continuation = [rnd.randrange(64) for _ in range(6)], [rnd.randrange(64) for _ in range(3)]
    choices = [[make_choice(context, continuation, 64)]]
    [[(lp, _)]] = score_groups(model, choices, 256, pad_id=0)
    assert lp == pytest.approx(naive_score(model, choices[0][0])[0], abs=1e-4)
    assert not scoring.ModelCall(model).split  # scored through the model's own forward
    assert scoring.ModelCall(_tiny_falcon_h1(1.0)).split  # a neutral multiplier keeps the fast path
