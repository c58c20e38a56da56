"""plw: instruction fine-tuning with a fractional prompt loss weight.

The public API is small: the loss (`plw_loss`), the data path (`tokenize_records` with its
`EncodeOptions`, giving weight-free features, and `PLWDataCollator`, which weighs them by a PLW or a
`TokenWeights` spec) and the trainers (`PLWTrainer`, `PLWSFTTrainer`, `PLWSFTConfig`). Heavy modules
are imported lazily so `import plw` stays fast for the CLI.
"""

from importlib import import_module

__version__ = "0.1.0"

_LAZY = {
    "plw_loss": "plw.loss.weighted",
    "token_losses": "plw.loss.weighted",
    "PLWDataCollator": "plw.data.collator",
    "tokenize_records": "plw.data.tokenize",
    "EncodeOptions": "plw.data.options",
    "TokenWeights": "plw.data.weights",
    "PLWTrainer": "plw.training.trainer",
    "PLWSFTTrainer": "plw.training.sft",
    "PLWSFTConfig": "plw.training.sft",
    "PLWError": "plw.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'plw' has no attribute {name!r}")
