"""The plan of shared-prefix scoring (plw.evaluation.scoring): which tokens go in which forward pass.

Pure Python, no model: `make_choice` truncates a continuation as lm-evaluation-harness does,
`plan_units` groups a question's choices under their longest common input prefix, `chunk_units`
cuts the units into chunks whose prefix KV caches are held at once, and `pack` cuts a chunk's
prefixes (or suffixes) into forward passes of least padded cost. `plw.evaluation.scoring` runs the
passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from plw.errors import PLWError

# The fixed cost of one forward pass, in tokens of compute: ~40 ms for a 135M model on 2 CPU cores,
# where a token costs ~1.8 ms. The per-token cost scales with the parameter count and the per-call
# cost hardly does, so smaller models get a larger value (see `call_cost_tokens`). `pack` trades
# padding against the number of passes with it.
CALL_COST_TOKENS = 24
CALL_COST_PARAMS = 135_000_000
# Prefix tokens whose KV cache is held at once; suffixes are sorted across this many.
CHUNK_TOKENS = 4096


@dataclass
class Choice:
    """One continuation to score.

    Attributes:
        seq: context + continuation tokens, left-truncated to at most max_length + 1.
        n_score: number of trailing tokens of `seq` that are scored (the continuation).
    """

    seq: list[int]
    n_score: int

    @property
    def first(self) -> int:
        """Input position whose logits predict the first continuation token."""
        return len(self.seq) - 1 - self.n_score


@dataclass
class Unit:
    """Choices whose inputs (`seq[:-1]`) share the prefix `prefix` (at least one token)."""

    prefix: list[int]
    choices: list[Choice]
    keys: list[tuple[int, int]] = field(default_factory=list)  # (group, choice) of each choice


def make_choice(context: list[int], continuation: list[int], max_length: int) -> Choice:
    """Truncate as lm-eval does: keep the last max_length + 1 tokens of context + continuation."""
    if not continuation:
        raise PLWError("empty continuation after tokenisation: nothing to score")
    if len(continuation) > max_length:
        raise PLWError(f"continuation of {len(continuation)} tokens exceeds the model's context {max_length}")
    return Choice((context + continuation)[-(max_length + 1) :], len(continuation))


def common_prefix_len(seqs: list[list[int]]) -> int:
    """Length of the longest common prefix of `seqs`."""
    shortest = min(len(s) for s in seqs)
    for i in range(shortest):
        token = seqs[0][i]
        if any(s[i] != token for s in seqs):
            return i
    return shortest


def plan_units(groups: Sequence[Sequence[Choice]]) -> list[Unit]:
    """One unit per group, split into single choices when the inputs share no token."""
    units = []
    for g, choices in enumerate(groups):
        inputs = [c.seq[:-1] for c in choices]
        n = common_prefix_len(inputs)
        if n == 0:
            units += [Unit(x, [c], [(g, i)]) for i, (x, c) in enumerate(zip(inputs, choices, strict=True))]
        else:
            units.append(Unit(inputs[0][:n], list(choices), [(g, i) for i in range(len(choices))]))
    return units


def pack(lengths: Sequence[int], max_tokens: int, call_cost: int = CALL_COST_TOKENS) -> list[list[int]]:
    """Cut indices, sorted by decreasing length, into batches of least total cost.

    A batch costs its padded size (rows x longest) plus `call_cost`, and holds at most `max_tokens`
    padded tokens (at least one row). Over sorted lengths the best cut into contiguous batches is a
    small dynamic programme.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    sizes = [lengths[i] for i in order]
    best = [0.0] + [float("inf")] * len(sizes)  # best[j]: least cost of the first j rows
    cut = [0] * (len(sizes) + 1)
    for i in range(len(sizes)):  # a batch starting at row i (its longest)
        rows_max = max(1, max_tokens // max(sizes[i], 1))
        for j in range(i + 1, min(len(sizes), i + rows_max) + 1):
            cost = best[i] + (j - i) * sizes[i] + call_cost
            if cost < best[j]:
                best[j], cut[j] = cost, i
    batches, j = [], len(sizes)
    while j > 0:
        batches.append(order[cut[j] : j])
        j = cut[j]
    return batches[::-1]


def call_cost_tokens(model) -> int:
    """`CALL_COST_TOKENS` scaled to the model's size (tiny models: overhead dominates; batch big)."""
    params = sum(p.numel() for p in model.parameters())
    return int(min(4096, max(1, round(CALL_COST_TOKENS * CALL_COST_PARAMS / max(params, 1)))))


def chunk_units(units: list[Unit], max_tokens: int = CHUNK_TOKENS) -> list[list[Unit]]:
    """Units sorted by prefix length, cut into chunks of about `max_tokens` prefix tokens."""
    chunks: list[list[Unit]] = [[]]
    total = 0
    for unit in sorted(units, key=lambda u: -len(u.prefix)):
        if chunks[-1] and total + len(unit.prefix) > max_tokens:
            chunks.append([])
            total = 0
        chunks[-1].append(unit)
        total += len(unit.prefix)
    return [c for c in chunks if c]
