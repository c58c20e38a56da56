"""Running sums of the unweighted prompt and completion losses, for logging.

The optimised loss mixes both parts through PLW; users also want each part on its own, so every
micro-batch adds its per-token losses here and the trainer reads and resets the means at each
logging step and evaluation.
"""

from __future__ import annotations

import torch


class LossTracker:
    """Sums of per-token loss and counts, split by prompt and completion tokens."""

    def __init__(self) -> None:
        self.sums: torch.Tensor | None = None  # [prompt_loss, prompt_n, completion_loss, completion_n]

    def add(self, ce: torch.Tensor, valid: torch.Tensor, completion: torch.Tensor) -> None:
        """Add a micro-batch.

        Args:
            ce: [B, T-1] per-token loss (detached).
            valid: [B, T-1] bool, positions that predict a real token.
            completion: [B, T-1] bool, positions that predict a completion token.
        """
        ce = ce.detach().double()
        prompt = valid & ~completion
        completion = valid & completion
        update = torch.stack(
            [
                (ce * prompt).nan_to_num().sum(),
                prompt.sum().double(),
                (ce * completion).nan_to_num().sum(),
                completion.sum().double(),
            ]
        )
        self.sums = update if self.sums is None else self.sums + update

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
        return out
