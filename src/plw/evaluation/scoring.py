"""Log-likelihood scoring that runs each shared prefix once.

The choices of a multiple-choice question are token sequences `context + continuation_i` that share
a prefix (the context, often more: PIQA's two solutions usually differ in a few words). We

1. plan one *unit* per question: the longest common prefix of its choices' inputs, plus the rest;
2. run *prefix passes* over the units' prefixes (sorted by length, left-padded), keeping their KV
   cache for a chunk of units;
3. run *suffix passes* over the rest of every choice, sorted by length across the whole chunk and
   batched against the cache rows of their units.

Every input token is computed once, padding stays small because both passes sort by their own
length, and logits (the vocabulary projection is a fifth of a small model's compute) are computed
only at positions that score a continuation token. Token sequences, left truncation and the
is-greedy rule are lm-evaluation-harness's, so the numbers are too. Steps 1-3's bookkeeping (which
tokens go in which pass) is `plw.evaluation.scoring_plan`; this module runs the passes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from plw.evaluation.gather import Gather, pad_tokens
from plw.evaluation.scoring_plan import (
    CHUNK_TOKENS,
    Choice,
    Unit,
    call_cost_tokens,
    chunk_units,
    pack,
    plan_units,
)
from plw.loss.head import logit_transform


class ModelCall:
    """Runs the model and turns selected positions into logits.

    Where the architecture allows, the decoder runs without the vocabulary projection and
    `head` projects only the gathered positions (a fifth of a small model's compute per position);
    otherwise the model's own forward with `logits_to_keep` is used.
    """

    def __init__(self, model):
        self.model = model
        # Models whose logits are not the plain head's output (soft-capping, multipliers) are scored
        # through their own forward; the rule is the training loss's (plw.loss.head).
        post = bool(logit_transform(getattr(model, "config", None)))
        self.decoder = None if post else _attr_call(model, "get_decoder")
        self.lm_head = None if post else _attr_call(model, "get_output_embeddings")
        self.split = self.decoder is not None and self.lm_head is not None

    def __call__(self, ids, mask, pos, keep: int, cache=None):
        """States of the last `keep` positions [batch, keep, hidden or vocab] and the cache."""
        kwargs = {"input_ids": ids, "attention_mask": mask, "position_ids": pos, "past_key_values": cache}
        if self.split:
            out = self.decoder(**kwargs, use_cache=True)
            return out.last_hidden_state[:, -keep:], out.past_key_values
        out = self.model(**kwargs, use_cache=True, logits_to_keep=keep)
        return out.logits, out.past_key_values

    def head(self, states: torch.Tensor) -> torch.Tensor:
        """Logits [n, vocab] of gathered states [n, hidden or vocab]."""
        return self.lm_head(states) if self.split else states


def _attr_call(model, name: str):
    fn = getattr(model, name, None)
    try:
        return fn() if callable(fn) else None
    except (AttributeError, NotImplementedError):
        return None


class ChunkScorer:
    """Scores all choices of a chunk of units: prefix passes, then suffix passes.

    Args:
        model: Hugging Face causal LM (see `ModelCall`).
        units: the chunk.
        pad_id: id written at padded positions (masked out, so any id works).
        max_tokens: padded tokens per forward pass.
    """

    def __init__(self, model, units: list[Unit], pad_id: int, max_tokens: int):
        self.model, self.units, self.pad_id, self.max_tokens = model, units, pad_id, max_tokens
        self.call = ModelCall(model)
        self.call_cost = call_cost_tokens(model)
        self.device = next(model.parameters()).device
        self.plen = [len(u.prefix) for u in units]
        self.width = max(self.plen)
        self.rows = list(self._owners())  # (unit index, choice, owner id)
        self.by_unit: list[list[tuple[Choice, int]]] = [[] for _ in units]
        for b, c, owner in self.rows:
            self.by_unit[b].append((c, owner))
        self.logprob = [0.0] * len(self.rows)
        self.greedy = [True] * len(self.rows)

    def _owners(self):
        owner = 0
        for b, u in enumerate(self.units):
            for c in u.choices:
                yield b, c, owner
                owner += 1

    def run(self) -> list[tuple[float, bool]]:
        """(logprob, is_greedy) per choice, in the order of the units' choices."""
        keys: list[torch.Tensor] = []  # per layer [units, heads, width, dim], prefixes left-padded
        values: list[torch.Tensor] = []
        masks = torch.zeros((len(self.units), self.width), dtype=torch.long)
        for batch in pack(self.plen, self.max_tokens, self.call_cost):
            cache, mask = self._prefix_pass(batch)
            cut = self.width - mask.shape[1]
            masks[batch, cut:] = mask
            for layer, (k, v, *_) in enumerate(cache):
                if layer == len(keys):
                    keys.append(k.new_zeros((len(self.units), k.shape[1], self.width, k.shape[3])))
                    values.append(v.new_zeros((len(self.units), v.shape[1], self.width, v.shape[3])))
                keys[layer][batch, :, cut:] = k
                values[layer][batch, :, cut:] = v
        rows = [r for r in self.rows if len(r[1].seq) - 1 > self.plen[r[0]]]
        lengths = [len(c.seq) - 1 - self.plen[b] for b, c, _ in rows]
        for batch in pack(lengths, self.max_tokens, self.call_cost):
            self._suffix_pass([rows[i] for i in batch], keys, values, masks)
        return list(zip(self.logprob, self.greedy, strict=True))

    def _prefix_pass(self, batch: list[int]):
        """Run the prefixes of units `batch`; score continuation tokens that fall inside them."""
        ids, mask = pad_tokens([self.units[b].prefix for b in batch], self.pad_id, left=True)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        # Left padding aligns prefix ends, so the last `keep` positions cover every scored prefix token.
        keep = max(1, max(self.plen[b] - min(c.first for c in self.units[b].choices) for b in batch))
        states, cache = self.call(ids.to(self.device), mask.to(self.device), pos.to(self.device), keep)
        gather = Gather()
        for r, b in enumerate(batch):
            for c, owner in self.by_unit[b]:
                end = min(len(c.seq) - 1, self.plen[b])  # position p predicts seq[p + 1]
                for p in range(c.first, end):
                    gather.add(r, keep - (self.plen[b] - p), c.seq[p + 1], owner)
        gather.apply(states, self.call.head, self.logprob, self.greedy)
        return cache, mask

    def _suffix_pass(self, rows, keys, values, masks) -> None:
        """Run each row's tokens after its prefix against the cache rows of its unit."""
        from transformers import DynamicCache

        suffixes = [c.seq[self.plen[b] : len(c.seq) - 1] for b, c, _ in rows]
        ids, smask = pad_tokens(suffixes, self.pad_id, left=False)
        unit = torch.tensor([b for b, _, _ in rows])
        span = max(self.plen[b] for b, _, _ in rows)  # prefixes are left-padded: keep the last `span`
        cut = self.width - span
        cache = DynamicCache(
            [(k[unit, :, cut:], v[unit, :, cut:]) for k, v in zip(keys, values, strict=True)]
        )
        mask = torch.cat([masks[unit, cut:], smask], dim=1)
        pos = torch.tensor([self.plen[b] for b, _, _ in rows])[:, None] + torch.arange(ids.shape[1])[None, :]
        start = min(max(0, c.first - self.plen[b]) for b, c, _ in rows)
        gather = Gather()
        for r, (b, c, owner) in enumerate(rows):
            for j in range(max(0, c.first - self.plen[b]), len(suffixes[r])):
                gather.add(r, j - start, c.seq[self.plen[b] + j + 1], owner)
        dev = self.device
        states, _ = self.call(ids.to(dev), mask.to(dev), pos.to(dev), ids.shape[1] - start, cache)
        gather.apply(states, self.call.head, self.logprob, self.greedy)


@torch.inference_mode()
def score_groups(
    model,
    groups: Sequence[Sequence[Choice]],
    max_tokens: int,
    pad_id: int,
    on_progress: Callable[[int], None] | None = None,
) -> list[list[tuple[float, bool]]]:
    """Score grouped choices; each group's shared prefix is computed once.

    Args:
        model: a Hugging Face causal LM, or a PEFT wrapper of one (see `ModelCall`).
        groups: the choices of each question.
        max_tokens: padded tokens per forward pass.
        pad_id: token id for padded positions.
        on_progress: called with the number of groups finished after each chunk.

    Returns:
        (logprob, is_greedy) per choice, shaped like `groups`.
    """
    result: list[list[tuple[float, bool] | None]] = [[None] * len(g) for g in groups]
    remaining = [len(g) for g in groups]
    # CHUNK_TOKENS is read here, at call time, so a test can set it on this module.
    for chunk in chunk_units(plan_units(groups), CHUNK_TOKENS):
        scores = iter(ChunkScorer(model, chunk, pad_id, max_tokens).run())
        finished = 0
        for unit in chunk:
            for g, i in unit.keys:
                result[g][i] = next(scores)
                remaining[g] -= 1
                finished += remaining[g] == 0
        if on_progress is not None:
            on_progress(finished)
    return result  # type: ignore[return-value]
