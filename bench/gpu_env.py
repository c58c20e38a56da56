"""Set-up for bench/gpu.py: vendored packages on the path, the data, the device and the models.

The GPU machine has CUDA torch, transformers, peft, accelerate, triton, statsmodels, rich and typer
but no package index. Everything else (trl, datasets and pyarrow, lm-eval, pydantic, liger-kernel,
cut-cross-entropy, ...) travels with the working tree as bench/_vendor/site.tar.xz, built here by
bench/vendor_gpu_deps.sh; `use_vendored` unpacks it once into bench/_vendor/site-packages and puts
that folder, and plw's own src/, first on sys.path. Call it before importing anything but the
standard library and torch. The folder's name matters: dill (which datasets uses to fingerprint)
pickles modules by reference only when their path contains "site-packages" (or lies under Python's
prefix), and pickling pyarrow by value fails.
"""

from __future__ import annotations

import os
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENDOR = REPO / "bench" / "_vendor"
ARCHIVE = VENDOR / "site.tar.xz"
STORIES = "models/stories260K"
# Randomly initialised models in SmolLM2's family (Llama architecture, vocabulary 49,152, tied
# embeddings): SmolLM2-135M's shape, and SmolLM2-1.7B's shape cut from 24 to 16 layers (~1.2B).
SHAPES = {
    "smollm2-135m-shape": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                               num_attention_heads=9, num_key_value_heads=3),
    "smollm2-1b-shape": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                             num_attention_heads=32, num_key_value_heads=32),
}  # fmt: skip


def use_vendored() -> str:
    """Put src/ and the unpacked vendored packages (if any) first on sys.path; say which were used."""
    site = VENDOR / "site-packages"
    stamp = site / ".from-archive"
    if ARCHIVE.is_file() and not (stamp.is_file() and stamp.stat().st_mtime >= ARCHIVE.stat().st_mtime):
        with tarfile.open(ARCHIVE) as tar:
            tar.extractall(VENDOR, filter="tar")  # the archive holds one folder, site-packages/
        stamp.touch()
    paths = [str(REPO / "src")] + ([str(site)] if site.is_dir() else [])
    for path in reversed(paths):
        if path not in sys.path:
            sys.path.insert(0, path)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return f"vendored packages from {site}" if site.is_dir() else "no vendored packages"


def data_dir(given: Path | None = None) -> Path:
    """The shared data folder: --data-dir, $PLW_SHARED_DATA, ../shared/data or ./shared/data."""
    candidates = [given] if given else []
    if os.environ.get("PLW_SHARED_DATA"):
        candidates.append(Path(os.environ["PLW_SHARED_DATA"]))
    candidates += [REPO.parent / "shared" / "data", REPO / "shared" / "data"]
    for path in candidates:
        if (path / STORIES).is_dir():
            return path
    tried = ", ".join(str(p) for p in candidates)
    raise SystemExit(f"bench/gpu.py: no {STORIES} under any of: {tried} (pass --data-dir)")


def stories(data: Path, device, dtype=None):
    """The real stories260K (5 layers, dim 64, vocabulary 512) on `device`."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(data / STORIES, dtype=dtype or torch.float32)
    return model.to(device)


def tokenizer(data: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(data / STORIES)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def random_model(shape: str, device):
    """A randomly initialised float32 model of one of SHAPES, built directly on `device`."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(vocab_size=49152, max_position_embeddings=8192, rope_theta=100000.0,
                         rms_norm_eps=1e-5, tie_word_embeddings=True, **SHAPES[shape])  # fmt: skip
    with torch.device(device):
        return AutoModelForCausalLM.from_config(config, dtype=torch.float32)


def describe(device) -> dict:
    """The machine and the versions that decide the numbers."""
    import importlib.metadata as md

    import torch

    versions = {}
    for name in ("torch", "transformers", "trl", "peft", "lm_eval", "liger_kernel", "cut_cross_entropy"):
        try:
            versions[name] = md.version(name.replace("_", "-"))
        except md.PackageNotFoundError:
            versions[name] = None
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {os.cpu_count()} cores"
    return {"device": name, "versions": versions}
