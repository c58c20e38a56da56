"""Running sums of the unweighted losses of each part of the examples, for logging.

The optimised loss mixes the parts through their weights; users also want each part on its own, so
every micro-batch adds its per-token losses here and the trainer reads and resets the means at each
logging step and evaluation:

- `prompt_loss` / `completion_loss`: tokens split by `completion_mask`, for every batch;
- `<part>_loss` for the chat parts of `plw.batch.PARTS` (`system_loss`, `user_loss`,
  `assistant_loss`, `tool_loss`, `template_loss`, `assistant_earlier_loss`, `reasoning_loss`,
  `reasoning_earlier_loss`), for batches that carry `token_parts` (chat records).

The sums live in one fixed-size tensor over every part, so processes can be summed by one gather
whether or not their batches carried `token_parts`.
"""

from __future__ import annotations

import torch

from plw.batch import PART_IDS, PARTS

# The chat parts (codes >= 2) are logged by name; prompt and completion by completion_mask instead.
_NAMED_PARTS = PARTS[PART_IDS["completion"] + 1 :]


class LossTracker:
    """Sums of per-token loss and counts, by prompt / completion and by part."""

    def __init__(self) -> None:
        # [prompt_loss, prompt_n, completion_loss, completion_n, then (loss, n) for each of PARTS]
        self.sums: torch.Tensor | None = None

    def add(
        self,
        ce: torch.Tensor,
        valid: torch.Tensor,
        completion: torch.Tensor,
        parts: torch.Tensor | None = None,
    ) -> None:
        """Add a micro-batch.

        Args:
            ce: [B, T-1] per-token loss (detached; NaN where not scored).
            valid: [B, T-1] bool, positions that predict a real token.
            completion: [B, T-1] bool, positions that predict a completion token.
            parts: [B, T-1] int, the part (index into PARTS) of each predicted token; negative where
                none (padding), or None when the batch has no `token_parts`.
        """
        ce = ce.detach().double().nan_to_num()
        prompt = valid & ~completion
        completion = valid & completion
        update = torch.stack(
            [(ce * prompt).sum(), prompt.sum().double(), (ce * completion).sum(), completion.sum().double()]
        )
        update = torch.cat([update, self._by_part(ce, valid, parts)])
        self.sums = update if self.sums is None else self.sums + update

    @staticmethod
    def _by_part(ce: torch.Tensor, valid: torch.Tensor, parts: torch.Tensor | None) -> torch.Tensor:
        """[2 * len(PARTS)]: (loss sum, token count) of each part, interleaved."""
        out = torch.zeros(len(PARTS), 2, dtype=torch.float64, device=ce.device)
        if parts is not None:
            keep = valid & parts.ge(0) & parts.lt(len(PARTS))
            index = parts[keep].long()
            out[:, 0].index_add_(0, index, ce[keep])
            out[:, 1].index_add_(0, index, torch.ones_like(ce[keep]))
        return out.reshape(-1)

    def pop(self, gather=None) -> dict[str, float]:
        """Means since the last pop, optionally summed across processes by `gather`; then reset."""
        if self.sums is None:
            return {}
        sums = self.sums if gather is None else gather(self.sums[None]).sum(0)
        self.sums = None
        out = {}
        if sums[1] > 0:
            out["prompt_loss"] = float(sums[0] / sums[1])
        if sums[3] > 0:
            out["completion_loss"] = float(sums[2] / sums[3])
        by_part = sums[4:].reshape(len(PARTS), 2)
        for name in _NAMED_PARTS:
            total, n = by_part[PART_IDS[name]]
            if n > 0:
                out[f"{name}_loss"] = float(total / n)
        return out
