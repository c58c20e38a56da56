"""Dry-run estimates: tokens each cell trains on and its compute, without training anything.

Tokens come from tokenising each dataset once with the cell's tokenizer and settings (through the
same on-disk cache training uses, so the later run reuses it): epochs x tokens per epoch, or with
max_steps, steps x batch x accumulation x mean example length. Compute is the usual 6 x parameters
x tokens (forward and backward; an upper bound for LoRA, whose frozen weights get no gradients).
Parameters are counted on the meta device from the model's config, so no weights load.

Only local files and the Hugging Face cache are read: an estimate must not wait on the network, so a
hub model or dataset that is not cached yet shows as unknown.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from plw.training.config import TrainConfig

log = logging.getLogger("plw.experiment")

# Offline fallbacks for the paper's models (hub ids that cannot be read without a download).
KNOWN_PARAMETERS = {"meta-llama/Llama-2-7b-hf": 6_738_415_616, "huggyllama/llama-7b": 6_738_415_616}


@dataclass(frozen=True)
class Estimate:
    """Tokens trained on, model parameters and training FLOPs of a cell (None when unknown)."""

    tokens: float | None
    parameters: int | None

    @property
    def flops(self) -> float | None:
        return 6.0 * self.parameters * self.tokens if self.tokens and self.parameters else None


def local_source(spec: str) -> str | None:
    """A local directory holding the model (for a hub id, its cached snapshot); None if not local."""
    from plw.models import materialize, resolve_model

    source = materialize(resolve_model(spec))
    if Path(source).is_dir():
        return source
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(source, local_files_only=True)
    except Exception:  # not in the cache (the exception type varies across huggingface_hub versions)
        return None


def local_data(path: str) -> bool:
    """Whether a data source can be read without the network."""
    from plw.data.presets import preset_local_file

    local = preset_local_file(path)
    return Path(path).expanduser().is_file() or (local is not None and local.is_file())


@functools.cache
def parameter_count(spec: str) -> int | None:
    """Parameters of a model from its config alone (None when the config is not available locally)."""
    if spec in KNOWN_PARAMETERS:
        return KNOWN_PARAMETERS[spec]
    source = local_source(spec)
    if source is None:
        return None
    try:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        config = AutoConfig.from_pretrained(source)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
        return sum(p.numel() for p in model.parameters())
    except Exception as err:  # offline hub ids, unusual architectures: the estimate just stays unknown
        log.info("parameter count of %s unknown: %s", spec, str(err).splitlines()[0] if str(err) else err)
        return None


@functools.cache
def _data_tokens(tokenizer_spec: str, data_json: str, options_json: str) -> tuple[int, int] | None:
    import json

    from plw.data.cache import encode_cached
    from plw.models import load_tokenizer

    data = json.loads(data_json)
    source = local_source(tokenizer_spec)
    if source is None or not local_data(data["path"]):
        return None
    try:
        tokenizer = load_tokenizer(source)
        examples, _ = encode_cached(data, tokenizer, **json.loads(options_json))
    except Exception as err:  # hub data offline, tokenizer unavailable: unknown
        log.info("tokens of %s unknown: %s", data_json, str(err).splitlines()[0] if str(err) else err)
        return None
    return sum(len(e["input_ids"]) for e in examples), len(examples)


def data_tokens(config: TrainConfig) -> tuple[int, int] | None:
    """(tokens, examples) of one epoch of the config's training data, as training encodes it."""
    import json

    from plw.experiment.mechanisms import encode_options

    return _data_tokens(
        config.tokenizer or config.model,
        json.dumps(config.data.model_dump(), sort_keys=True),
        json.dumps(encode_options(config), sort_keys=True),
    )


def estimate(config: TrainConfig) -> Estimate:
    """The estimate for one cell's TrainConfig."""
    counted = data_tokens(config)
    if config.max_steps > 0:
        # Packed rows are full; otherwise a row is as long as an average example.
        mean = counted[0] / counted[1] if counted and counted[1] else None
        length = config.max_length if config.packing or mean is None else mean
        tokens = config.max_steps * config.batch_size * config.gradient_accumulation_steps * length
    else:
        tokens = config.epochs * counted[0] if counted else None
    return Estimate(tokens, parameter_count(config.model))


def human(number: float | None) -> str:
    """1234567 -> '1.23M'; None -> '-'."""
    if number is None:
        return "-"
    for unit, size in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(number) >= size:
            return f"{number / size:.3g}{unit}"
    return f"{number:.3g}"
