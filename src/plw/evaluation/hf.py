"""`EvalLM` for Hugging Face causal LMs: a full model, or a base model plus a LoRA adapter directory.

Tokenisation follows lm-evaluation-harness's HFLM exactly (trailing context spaces move to the
continuation; the continuation is what encoding context + continuation adds after the context's own
tokens; an empty context becomes the BOS token), so log-likelihoods agree with lm-eval's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from plw.errors import PLWError
from plw.evaluation.model import EvalLM, Request, Score, cut_at_stop
from plw.evaluation.scoring import score_groups
from plw.evaluation.scoring_plan import make_choice

DEFAULT_MAX_LENGTH = 2048  # lm-eval's fallback when neither config nor tokenizer sets a length
# Scoring packs sequences by tokens: batch_size rows of this many tokens per forward pass.
TOKENS_PER_ROW = 64
_SEQLEN_ATTRS = ("n_positions", "max_position_embeddings", "n_ctx")


class HFModel(EvalLM):
    """A loaded causal LM and its tokenizer.

    Args:
        model: a `transformers` causal LM or a PEFT wrapper of one.
        tokenizer: its tokenizer; a missing pad token is set to EOS.
        batch_size: sequences per forward pass when generating; scoring packs up to
            `batch_size * TOKENS_PER_ROW` tokens per pass.
        max_length: context window; default from the config as lm-eval resolves it.
        name: identifier recorded with results.
    """

    def __init__(self, model, tokenizer, *, batch_size: int = 16, max_length: int | None = None, name=None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.batch_size = max(1, int(batch_size))
        self.max_length = max_length or resolve_max_length(model.config, tokenizer)
        self.name = name or getattr(model.config, "_name_or_path", "") or type(model).__name__
        self.on_progress: Callable[[int], None] | None = None

    @classmethod
    def from_spec(
        cls, spec: str, *, adapter: str | None = None, dtype: str = "float32", batch_size: int = 16
    ) -> HFModel:
        """Load a model by name (see `plw.models.resolve_model`) or a LoRA adapter directory.

        Args:
            spec: model name, directory or GGUF file; a directory holding `adapter_config.json` is
                loaded as its base model plus that adapter.
            adapter: LoRA adapter directory to apply on top of `spec`.
            dtype: "float32" or "bfloat16".
        """
        from plw.models import load_model, load_tokenizer

        if adapter is None and (Path(spec) / "adapter_config.json").is_file():
            adapter, spec = spec, _adapter_base(Path(spec))
        model = load_model(spec, dtype=dtype)
        tokenizer = load_tokenizer(spec)
        if adapter is not None:
            model = _apply_adapter(model, Path(adapter))
            if (Path(adapter) / "tokenizer_config.json").is_file():
                tokenizer = load_tokenizer(str(adapter))
        name = f"{spec}+{adapter}" if adapter else spec
        return cls(model, tokenizer, batch_size=batch_size, name=name)

    # ---- tokenisation, as lm-eval's HFLM ----

    @property
    def prefix_token_id(self) -> int:
        tok = self.tokenizer
        return tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id

    def encode_pair(self, context: str, continuation: str, cache: dict | None = None):
        """(context tokens, continuation tokens) as lm-eval's `_encode_pair`."""
        if not context:
            cont = self.tokenizer.encode(continuation, add_special_tokens=False)
            if cont and cont[0] == self.prefix_token_id:
                return cont[:1], cont[1:]
            return [self.prefix_token_id], cont
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces:
            context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
        cache = {} if cache is None else cache
        if context not in cache:
            cache[context] = self.tokenizer.encode(context)
        ctx = cache[context]
        whole = self.tokenizer.encode(context + continuation)
        return ctx, whole[len(ctx) :]

    # ---- EvalLM ----

    def loglikelihood(self, requests: Sequence[Request]) -> list[Score]:
        # Requests with the same context (the choices of one question) form a group.
        index: dict[str, int] = {}
        groups: list[list[Request]] = []
        where = []
        for context, continuation in requests:
            g = index.setdefault(context, len(groups))
            if g == len(groups):
                groups.append([])
            where.append((g, len(groups[g])))
            groups[g].append((context, continuation))
        scores = self.loglikelihood_grouped(groups)
        return [scores[g][i] for g, i in where]

    def loglikelihood_grouped(self, groups: Sequence[Sequence[Request]]) -> list[list[Score]]:
        cache: dict[str, list[int]] = {}
        choices = [
            [make_choice(*self.encode_pair(ctx, cont, cache), self.max_length) for ctx, cont in group]
            for group in groups
        ]
        pad = self.tokenizer.pad_token_id
        return score_groups(
            self.model, choices, self.batch_size * TOKENS_PER_ROW, pad, on_progress=self.on_progress
        )

    def generate(
        self, prompts: Sequence[str], max_new_tokens: int = 256, stop: Sequence[str] = ()
    ) -> list[str]:
        room = max(1, self.max_length - max_new_tokens)  # left-truncate prompts as lm-eval does
        encoded = [self.tokenizer.encode(p)[-room:] for p in prompts]
        return self.generate_ids(encoded, max_new_tokens, stop)

    @torch.inference_mode()
    def generate_ids(
        self, encoded: Sequence[list[int]], max_new_tokens: int = 256, stop: Sequence[str] = ()
    ) -> list[str]:
        """Greedy continuations of already tokenised prompts, longest first in left-padded batches.

        For callers that must keep a tokenisation exactly (memorisation scores training prompts as
        they were tokenised for training). An empty prompt starts from BOS (or the pad token).
        """
        bos = self.tokenizer.bos_token_id
        first = [self.tokenizer.pad_token_id if bos is None else bos]
        encoded = [list(e) or first for e in encoded]
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
        out: list[str] = [""] * len(encoded)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            texts = self._generate_batch([encoded[i] for i in batch], max_new_tokens, stop)
            for i, text in zip(batch, texts, strict=True):
                out[i] = cut_at_stop(text, stop)
            if self.on_progress is not None:
                self.on_progress(len(batch))
        return out

    def _generate_batch(
        self, encoded: list[list[int]], max_new_tokens: int, stop: Sequence[str]
    ) -> list[str]:
        """Greedy generation for left-padded prompts [batch, width]; returns the decoded new text."""
        width = max(len(e) for e in encoded)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(e)) + e for e in encoded])
        mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in encoded])
        device = next(self.model.parameters()).device
        kwargs = {"stop_strings": list(stop), "tokenizer": self.tokenizer} if stop else {}
        generated = self.model.generate(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            pad_token_id=pad,
            **kwargs,
        )
        return self.tokenizer.batch_decode(generated[:, width:].cpu(), skip_special_tokens=True)

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def apply_chat_template(self, user_message: str) -> str:
        if not self.has_chat_template:
            return super().apply_chat_template(user_message)
        messages = [{"role": "user", "content": user_message}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def resolve_max_length(config, tokenizer) -> int:
    """The context window as lm-eval resolves it: config attributes, then the tokenizer, then 2048."""
    for attr in _SEQLEN_ATTRS:
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    length = getattr(tokenizer, "model_max_length", None)
    if isinstance(length, int) and 0 < length < 10**9:
        return length
    return DEFAULT_MAX_LENGTH


def _adapter_base(adapter: Path) -> str:
    try:
        base = json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    except (OSError, ValueError, KeyError) as err:
        raise PLWError(f"{adapter / 'adapter_config.json'}: no readable base_model_name_or_path") from err
    if not base:
        raise PLWError(f"{adapter / 'adapter_config.json'}: base_model_name_or_path is empty")
    return base


def _apply_adapter(model, adapter: Path):
    """Load a PEFT adapter and merge it: evaluation never trains, and merged weights run faster."""
    from peft import PeftModel

    if not (adapter / "adapter_config.json").is_file():
        raise PLWError(f"adapter directory {adapter} has no adapter_config.json")
    return PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
