"""LoRA adapters are initialised from the config's seed, so a rerun of a config starts identically."""

from __future__ import annotations

import torch

from plw.models import load_model
from plw.training.config import TrainConfig
from plw.training.run import apply_lora


def adapters(stories_path, alpaca_path, seed: int, global_seed: int) -> dict[str, torch.Tensor]:
    config = TrainConfig(model=str(stories_path), data={"path": str(alpaca_path)}, output_dir="unused",
                         prompt_loss_weight=0.1, lora={"r": 4}, seed=seed)  # fmt: skip
    torch.manual_seed(global_seed)  # whatever the global RNG holds must not matter
    model = apply_lora(load_model(str(stories_path)), config)
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_A" in n}


def test_same_seed_same_adapters_other_seed_other_adapters(stories_path, alpaca_path):
    first, again, other = (adapters(stories_path, alpaca_path, s, g) for s, g in ((0, 1), (0, 2), (1, 1)))
    assert first and first.keys() == again.keys() == other.keys()
    assert all(torch.equal(first[n], again[n]) for n in first)
    assert not all(torch.equal(first[n], other[n]) for n in first)
