"""Regularisers from the paper's comparison that are not plain Trainer options.

Weight decay is `TrainingArguments.weight_decay`, dropout is set in the model config
(`plw.models.set_dropout`) and LoRA config, label smoothing is part of the PLW loss. What remains is
the Minkowski-distance penalty to the pre-trained weights.
"""

from __future__ import annotations

import torch


class MinkowskiPenalty(torch.nn.Module):
    """lambda * sum_i |theta_i - theta0_i| ** p over the trainable parameters.

    theta0 is a copy of the trainable parameters taken at construction (the pre-trained values for
    full fine-tuning; for LoRA the adapters' initial values, so the penalty acts on the adapters).

    Args:
        model: the model whose trainable parameters are penalised.
        lam: the strength lambda.
        p: the exponent, > 0.
    """

    def __init__(self, model: torch.nn.Module, lam: float, p: float = 2.0):
        super().__init__()
        if p <= 0:
            raise ValueError(f"minkowski_p must be > 0, got {p}")
        self.lam, self.p = float(lam), float(p)
        self.params = [param for param in model.parameters() if param.requires_grad]
        self.anchors = [param.detach().clone() for param in self.params]

    def forward(self) -> torch.Tensor:
        total = torch.zeros((), device=self.params[0].device)
        for param, anchor in zip(self.params, self.anchors, strict=True):
            total = total + (param - anchor.to(param.device)).abs().pow(self.p).sum()
        return self.lam * total
