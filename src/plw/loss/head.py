"""Run a causal LM so that its `logits` output holds the final hidden states, for the chunked loss.

The trainer must keep calling the model it was given (possibly wrapped by DDP or accelerate), so
data-parallel gradient hooks and mixed-precision wrappers still run; only the output head is
swapped, for the duration of one forward pass, by a pass-through module. The chunked loss then
applies the real head's weight and bias chunk by chunk (`plw.loss.chunked.chunked_weighted_ce`).

The pass-through is not a plain `nn.Identity`: it threads the head's weight and bias through the
autograd graph of its output (with no gradient), so DDP with `find_unused_parameters=True` (the
Trainer's default without gradient checkpointing) still sees an untied head as used in forward and
does not reduce its gradient early.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

# Config fields that transform the logits after the head (soft-capping, scaling); any of them set to a
# non-neutral value makes the plain linear head wrong, for the fused training loss and for scoring
# (`plw.evaluation.scoring`) alike: `logit_transform` is the one rule both use.
_LOGIT_TRANSFORMS: dict[str, float | None] = {
    "final_logit_softcapping": None,  # Gemma 2/3: tanh soft-capping
    "logit_softcapping": None,
    "logit_scale": 1.0,  # Cohere
    "logits_scaling": 1.0,  # Granite (divides)
    "output_multiplier": 1.0,
    "lm_head_multiplier": 1.0,  # Falcon-H1
    "output_multiplier_scale": 1.0,
}


def unwrap_model(model: nn.Module) -> nn.Module:
    """The transformers model inside DDP / DataParallel / DeepSpeed / torch.compile / peft wrappers."""
    from accelerate.utils import extract_model_from_parallel

    model = extract_model_from_parallel(model, keep_torch_compile=False)
    # PeftModel -> LoraModel -> the transformers model; `get_base_model` is peft's own unwrapping.
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def supports_chunked_loss(model: nn.Module) -> tuple[bool, str]:
    """Whether `hidden_states_instead_of_logits` + the chunked loss give the model's exact loss.

    Returns:
        (ok, reason): reason says why not (for the trainer's fallback log), "" when ok.
    """
    if _is_fsdp(model):
        return False, "the model is FSDP-sharded (the head's weight is not a full local tensor)"
    if hasattr(model, "_orig_mod") or "_orig_mod" in getattr(model, "__dict__", {}):
        return False, "the model is torch.compile'd (swapping its head would force recompilation)"
    inner = unwrap_model(model)
    if not (hasattr(inner, "get_output_embeddings") and hasattr(inner, "set_output_embeddings")):
        return False, f"{type(inner).__name__} has no get/set_output_embeddings"
    head = inner.get_output_embeddings()
    if type(head) is not nn.Linear:  # exact type: LoRA, quantised and other subclasses compute more
        return False, f"the output head is {type(head).__name__}, not a plain torch.nn.Linear"
    reason = _head_weight_problem(head) or logit_transform(getattr(inner, "config", None))
    return (False, reason) if reason else (True, "")


def _is_fsdp(model: nn.Module) -> bool:
    kinds: list[type] = []
    try:
        from torch.distributed.fsdp import FullyShardedDataParallel

        kinds.append(FullyShardedDataParallel)
        from torch.distributed.fsdp import FSDPModule  # FSDP2 (fully_shard)

        kinds.append(FSDPModule)
    except ImportError:
        pass
    return bool(kinds) and any(isinstance(m, tuple(kinds)) for m in model.modules())


def _head_weight_problem(head: nn.Linear) -> str:
    weight = head.weight
    if weight.is_meta or weight.numel() == 0 or hasattr(weight, "ds_id"):
        return "the output head's weight is not materialised locally (meta, offloaded or ZeRO-3)"
    if not weight.is_floating_point():
        return f"the output head's weight has dtype {weight.dtype}"
    return ""


def logit_transform(config) -> str:
    """Why a model's logits are not its plain linear head's output ("" when they are).

    Checks the config and its `text_config` (multimodal wrappers) for any field of
    `_LOGIT_TRANSFORMS` set to a value that changes the logits.
    """
    configs = [config, getattr(config, "text_config", None)] if config is not None else []
    for cfg in filter(None, configs):
        for name, neutral in _LOGIT_TRANSFORMS.items():
            value = getattr(cfg, name, None)
            if value is not None and value != neutral:
                return f"config.{name}={value} transforms the logits after the head"
    return ""


@contextmanager
def hidden_states_instead_of_logits(model: nn.Module) -> Iterator[tuple[Tensor, Tensor | None]]:
    """Make `model(**inputs).logits` the final (normed) hidden states [B, T, H] inside the block.

    Works on the model as the trainer holds it (DDP / accelerate / peft wrapped): the head of the
    unwrapped transformers model is swapped for a pass-through and restored on exit, also on errors.
    Check `supports_chunked_loss(model)` first.

    Yields:
        (head_weight [V, H], head_bias [V] or None): the real head's parameters, for the chunked loss.
    """
    inner = unwrap_model(model)
    head = inner.get_output_embeddings()
    if not isinstance(head, nn.Linear):
        raise TypeError(
            f"hidden_states_instead_of_logits needs a linear output head, got {type(head).__name__}"
        )
    inner.set_output_embeddings(_HeadPassthrough(head))
    try:
        yield head.weight, head.bias
    finally:
        inner.set_output_embeddings(head)


class _HeadPassthrough(nn.Module):
    """Stands in for the output head: returns its input, linked in autograd to the head's parameters.

    The head is held outside `_modules` so its parameters are not registered twice.
    """

    def __init__(self, head: nn.Linear):
        super().__init__()
        self.__dict__["_head"] = head

    def forward(self, hidden: Tensor) -> Tensor:
        head = self.__dict__["_head"]
        params = [p for p in (head.weight, head.bias) if p is not None]
        if not torch.is_grad_enabled() or not any(p.requires_grad for p in params):
            return hidden
        return _TouchParams.apply(hidden, *params)


class _TouchParams(torch.autograd.Function):
    """Identity on its first input; the other inputs only become graph edges (gradient None)."""

    @staticmethod
    def forward(ctx, hidden: Tensor, *params: Tensor) -> Tensor:
        ctx.n_params = len(params)
        return hidden.view_as(hidden)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return (grad, *([None] * ctx.n_params))
