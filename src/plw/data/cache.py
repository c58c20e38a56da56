"""On-disk cache of tokenised datasets.

Cells of a sweep that share tokenizer, data and template tokenise once. Only the PLW-free part
(`input_ids`, `completion_mask`) is cached; weights are added per run. The key covers everything that
changes the tokens: the tokenizer's vocabulary and settings, the data file's bytes (or hub id), the
format, template, max_length, truncation and chat options.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from plw.data.sources import load_records
from plw.data.tokenize import TokenizeReport, encode_records
from plw.files import write_atomic
from plw.models import cache_dir


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A hash of what determines a tokenizer's output."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    body = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    extra = f"{tokenizer.bos_token_id}:{tokenizer.eos_token_id}:{getattr(tokenizer, 'chat_template', None)}"
    return hashlib.sha256((body + extra).encode()).hexdigest()[:16]


def data_fingerprint(path: str) -> str:
    """Content hash of a local file, or the id itself for hub datasets."""
    from plw.data.presets import preset_local_file

    local = preset_local_file(path) or Path(path).expanduser()
    if not local.is_file():
        return path
    digest = hashlib.sha256()
    with local.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def encode_cached(
    data: dict[str, Any], tokenizer: Any, *, use_cache: bool = True, **options: Any
) -> tuple[list[dict[str, list[int]]], TokenizeReport]:
    """Load and encode records, reusing an earlier identical encoding if cached.

    Args:
        data: `path`, `config`, `split`, `limit` of the records (a DataConfig dump).
        tokenizer: the tokenizer.
        use_cache: read and write the cache.
        **options: `encode_records` keyword arguments.
    """
    from plw.data.synthetic import resolve_source

    source = {k: data.get(k) for k in ("path", "config", "split", "limit")}
    synthetic = resolve_source(source["path"], source["config"], source["split"] or "train")
    content = data_fingerprint(str(synthetic) if synthetic else source["path"])
    key_text = json.dumps([tokenizer_fingerprint(tokenizer), content, source, options], sort_keys=True)
    path = cache_dir() / "tokenized" / (hashlib.sha256(key_text.encode()).hexdigest()[:24] + ".npz")
    if use_cache and path.is_file():
        return _read(path)
    records = load_records(
        source["path"], config=source["config"], split=source["split"] or "train", limit=source["limit"]
    )
    examples, report = encode_records(records, tokenizer, **options)
    if use_cache:
        _write(path, examples, report)
    return examples, report


def _write(path: Path, examples: list[dict[str, list[int]]], report: TokenizeReport) -> None:
    lengths = np.array([len(e["input_ids"]) for e in examples], dtype=np.int64)
    ids = np.array([t for e in examples for t in e["input_ids"]], dtype=np.int64)
    mask = np.array([m for e in examples for m in e["completion_mask"]], dtype=np.int8)
    # Atomic, so concurrent cells never read a half-written cache.
    write_atomic(path, lambda tmp: np.savez(tmp, lengths=lengths, ids=ids, mask=mask,
                                            report=json.dumps(report.__dict__)))  # fmt: skip


def _read(path: Path) -> tuple[list[dict[str, list[int]]], TokenizeReport]:
    with np.load(path) as arrays:
        bounds = np.concatenate([[0], np.cumsum(arrays["lengths"])])
        ids, mask = arrays["ids"].tolist(), arrays["mask"].tolist()
        report = TokenizeReport(**json.loads(str(arrays["report"])))
    examples = [
        {"input_ids": ids[a:b], "completion_mask": mask[a:b]}
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    return examples, report
