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

from plw.data.options import EncodeOptions
from plw.training.config import TrainConfig

log = logging.getLogger("plw.experiment")

# Offline fallbacks for the paper's models (hub ids that cannot be read without a download).
KNOWN_PARAMETERS = {"meta-llama/Llama-2-7b-hf": 6_738_415_616, "huggyllama/llama-7b": 6_738_415_616}
_OFFLINE = "is not available offline (not local, not in the Hugging Face cache)"


@dataclass(frozen=True)
class Estimate:
    """Tokens trained on, model parameters and training FLOPs of a cell (None when unknown).

    `unknown` says why the FLOPs are unknown (a dataset or model not readable offline), else None.
    """

    tokens: float | None
    parameters: int | None
    unknown: str | None = None

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


def parameter_count(spec: str) -> int | None:
    """Parameters of a model from its config alone (None when the config is not available locally)."""
    count = _parameters(spec)
    return count if isinstance(count, int) else None


@functools.cache
def _parameters(spec: str) -> int | str:
    """The parameter count, or why it is unknown."""
    if spec in KNOWN_PARAMETERS:
        return KNOWN_PARAMETERS[spec]
    source = local_source(spec)
    if source is None:
        return f"model {spec} {_OFFLINE}"
    try:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        config = AutoConfig.from_pretrained(source)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
        return sum(p.numel() for p in model.parameters())
    except Exception as err:  # offline hub ids, unusual architectures: the estimate just stays unknown
        log.info("parameter count of %s unknown: %s", spec, _first_line(err))
        return f"cannot count the parameters of {spec}: {_first_line(err)}"


@functools.cache
def _data_tokens(
    tokenizer_spec: str, data_json: str, options: EncodeOptions, chat_template: str | None = None
) -> tuple[int, int] | str:
    """(tokens, examples), or why they are unknown (memoised: the options are hashable)."""
    import json

    from plw.data.cache import encode_cached
    from plw.models import load_tokenizer

    data = json.loads(data_json)
    source = local_source(tokenizer_spec)
    if source is None:
        return f"tokenizer {tokenizer_spec} {_OFFLINE}"
    if not local_data(data["path"]):
        return f"dataset {data['path']} is not a local file (hub datasets are not read for an estimate)"
    try:
        tokenizer = load_tokenizer(source, chat_template=chat_template)
        examples, _ = encode_cached(data, tokenizer, options)
    except Exception as err:  # hub data offline, tokenizer unavailable: unknown
        log.info("tokens of %s unknown: %s", data_json, _first_line(err))
        return f"cannot tokenise {data['path']}: {_first_line(err)}"
    return sum(len(e["input_ids"]) for e in examples), len(examples)


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def data_tokens(config: TrainConfig) -> tuple[int, int] | str:
    """(tokens, examples) of one epoch of the config's training data as training encodes it, or why
    they are unknown."""
    import json

    from plw.training.run import encode_options

    return _data_tokens(
        config.tokenizer or config.model,
        json.dumps(config.data.model_dump(), sort_keys=True),
        encode_options(config.data, config),
        config.chat_template,
    )


def estimate(config: TrainConfig) -> Estimate:
    """The estimate for one cell's TrainConfig."""
    counted = data_tokens(config)
    why_tokens = counted if isinstance(counted, str) else None
    counted = None if why_tokens else counted
    if config.max_steps > 0:
        # Packed rows are full; otherwise a row is as long as an average example.
        mean = counted[0] / counted[1] if counted and counted[1] else None
        length = config.max_length if config.packing or mean is None else mean
        tokens = config.max_steps * config.batch_size * config.gradient_accumulation_steps * length
    else:
        tokens = config.epochs * counted[0] if counted else None
    parameters = _parameters(config.model)
    reasons = [why_tokens if tokens is None else None, parameters if isinstance(parameters, str) else None]
    unknown = "; ".join(r for r in reasons if r) or None
    if unknown is None and not tokens:
        unknown = "the training data has no tokens"
    return Estimate(tokens, parameters if isinstance(parameters, int) else None, unknown)


def human(number: float | None) -> str:
    """1234567 -> '1.23M'; None -> '-'."""
    if number is None:
        return "-"
    for unit, size in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(number) >= size:
            return f"{number / size:.3g}{unit}"
    return f"{number:.3g}"
