"""Small tensor helpers for scoring: padding token lists and gathering target log-probabilities."""

from __future__ import annotations

import torch


def pad_tokens(seqs: list[list[int]], pad_id: int, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad token lists into ids and attention mask, both [len(seqs), longest]."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, s in enumerate(seqs):
        span = slice(width - len(s), width) if left else slice(0, len(s))
        ids[r, span] = torch.tensor(s, dtype=torch.long)
        mask[r, span] = 1
    return ids, mask


class Gather:
    """Collects (row, logit index, target, owner) and scores them in one vectorised gather.

    An owner is one continuation; its log-probability is the sum over its tokens, and it is greedy
    when every token is the argmax of its logits.
    """

    def __init__(self):
        self.rows: list[int] = []
        self.idx: list[int] = []
        self.targets: list[int] = []
        self.owners: list[int] = []

    def add(self, row: int, idx: int, target: int, owner: int) -> None:
        self.rows.append(row)
        self.idx.append(idx)
        self.targets.append(target)
        self.owners.append(owner)

    def apply(self, states: torch.Tensor, head, logprob: list[float], greedy: list[bool]) -> None:
        """Add each token's log-probability to its owner; clear `greedy` on a non-argmax token.

        Args:
            states: [rows, positions, hidden or vocab], as the model returned them.
            head: maps gathered states [n, ...] to logits [n, vocab] (identity for logits).
            logprob: per-owner running sums, updated in place.
            greedy: per-owner flags, updated in place.
        """
        if not self.rows:
            return
        picked = head(states[torch.tensor(self.rows), torch.tensor(self.idx)]).float()  # [n, vocab]
        targets = torch.tensor(self.targets, device=picked.device)
        lp = picked.gather(1, targets[:, None])[:, 0] - torch.logsumexp(picked, dim=-1)
        hit = picked.argmax(dim=-1) == targets
        for owner, value, ok in zip(self.owners, lp.tolist(), hit.tolist(), strict=True):
            logprob[owner] += value
            greedy[owner] = greedy[owner] and ok
