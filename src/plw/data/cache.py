"""On-disk cache of tokenised datasets.

Cells of a sweep that share tokenizer, data and tokenisation options tokenise once. Examples are
weight-free (`plw.data.tokenize`): the collator weighs them per run, so cells that differ only in
their weights (every PLW level of a sweep) share one entry. The key covers everything that changes
the tokens: the tokenizer's vocabulary and settings, the data file's bytes (or hub id), the
`plw.data.options.EncodeOptions` and the cache layout.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from plw.data.load import load_records
from plw.data.options import EncodeOptions
from plw.data.presets import preset_local_file
from plw.data.sources import Record
from plw.data.synthetic import resolve_source
from plw.data.tokenize import TokenizeReport, encode_records
from plw.files import write_atomic
from plw.models import cache_dir

# Bumped when the cached arrays change, so an older cache file is never read as a newer one.
LAYOUT = 3  # 2: token parts, message and sample weights, record locations; 3: reasoning parts, spans


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A hash of what determines a tokenizer's output."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    body = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    extra = f"{tokenizer.bos_token_id}:{tokenizer.eos_token_id}:{getattr(tokenizer, 'chat_template', None)}"
    return hashlib.sha256((body + extra).encode()).hexdigest()[:16]


def data_fingerprint(path: str) -> str:
    """Content hash of a local file, or the id itself for hub datasets."""
    local = preset_local_file(path) or Path(path).expanduser()
    if not local.is_file():
        return path
    digest = hashlib.sha256()
    with local.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def encode_cached(
    data: dict[str, Any],
    tokenizer: Any,
    options: EncodeOptions | None = None,
    *,
    use_cache: bool = True,
    records: Callable[[], list[Record]] | None = None,
) -> tuple[list[dict[str, Any]], TokenizeReport]:
    """Load and encode records, reusing an earlier identical encoding if cached.

    Args:
        data: `path`, `config`, `split`, `limit` of the records (a DataConfig dump).
        tokenizer: the tokenizer.
        options: the tokenisation options (default `EncodeOptions()`), part of the key.
        use_cache: read and write the cache.
        records: gives the records of `data` when they must be encoded (a caller that reads them
            anyway passes its copy, so a run reads them once); default: `load_records`.

    Returns:
        (examples, report): the weight-free examples of `encode_records` and its counts.
    """
    options = options or EncodeOptions()
    source = {k: data.get(k) for k in ("path", "config", "split", "limit")}
    synthetic = resolve_source(source["path"], source["config"], source["split"] or "train")
    content = data_fingerprint(str(synthetic) if synthetic else source["path"])
    key = [LAYOUT, tokenizer_fingerprint(tokenizer), content, source, options.key()]
    key_text = json.dumps(key, sort_keys=True)
    path = cache_dir() / "tokenized" / (hashlib.sha256(key_text.encode()).hexdigest()[:24] + ".npz")
    if use_cache and path.is_file():
        return _read(path)
    if records is None:
        split = source["split"] or "train"
        loaded = load_records(source["path"], config=source["config"], split=split, limit=source["limit"])
    else:
        loaded = records()
    examples, report = encode_records(loaded, tokenizer, options)
    if use_cache:
        _write(path, examples, report)
    return examples, report


def _write(path: Path, examples: list[dict[str, Any]], report: TokenizeReport) -> None:
    def flat(key: str, dtype: type) -> np.ndarray:
        return np.array([t for e in examples for t in e[key]], dtype=dtype)

    arrays = {
        "lengths": np.array([len(e["input_ids"]) for e in examples], dtype=np.int64),
        "ids": flat("input_ids", np.int64),
        "mask": flat("completion_mask", np.int8),
        "parts": flat("token_parts", np.int8),
        "message_weights": flat("message_weights", np.float64),  # float64: weights read back exactly
        "sample_weights": np.array([e["sample_weight"] for e in examples], dtype=np.float64),
        "where": json.dumps([e["where"] for e in examples]),
        "report": json.dumps(report.__dict__),
    }
    # Atomic, so concurrent cells never read a half-written cache.
    write_atomic(path, lambda tmp: np.savez(tmp, **arrays))


def _read(path: Path) -> tuple[list[dict[str, Any]], TokenizeReport]:
    with np.load(path) as arrays:
        bounds = np.concatenate([[0], np.cumsum(arrays["lengths"])]).tolist()
        columns = {
            "input_ids": arrays["ids"].tolist(),
            "completion_mask": arrays["mask"].tolist(),
            "token_parts": arrays["parts"].tolist(),
            "message_weights": arrays["message_weights"].tolist(),
        }
        samples, wheres = arrays["sample_weights"].tolist(), json.loads(str(arrays["where"]))
        report = TokenizeReport(**json.loads(str(arrays["report"])))
    examples = [
        {
            **{key: values[a:b] for key, values in columns.items()},
            "sample_weight": sample,
            "where": where,
        }
        for a, b, sample, where in zip(bounds[:-1], bounds[1:], samples, wheres, strict=True)
    ]
    return examples, report
