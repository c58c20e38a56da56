"""`PLWSFTTrainer` / `PLWSFTConfig`: a drop-in for `trl.SFTTrainer` users.

Change one import and add `prompt_loss_weight`:

    from plw import PLWSFTConfig, PLWSFTTrainer
    args = PLWSFTConfig(output_dir="out", prompt_loss_weight=0.1)
    trainer = PLWSFTTrainer(model=model, args=args, train_dataset=dataset)

How each dataset type is weighted:

- `messages` (conversational language modelling, the usual chat format): plw renders and tokenises
  the messages itself, as `plw train` does (`plw.data.tokenize`, template "chat"). Any chat template
  that renders earlier turns the same way as later ones works; no `{% generation %}` markers are
  needed. System, user and tool turns and the template's headers weigh `prompt_loss_weight`,
  assistant turns `completion_loss_weight`, and the chat weights (`role_weights`, `template_weight`,
  `earlier_assistant_weight`, `reasoning_weight`) refine that. Messages are read as `plw train` reads
  them (reasoning, tool calls, weight spans, peers' weight fields: `plw.data.messages`); a `tools`
  column goes to the chat template, a `chat_template_kwargs` column is not used. `chat_template` (or
  TRL's `chat_template_path` naming a built-in, a Jinja file or a template string) is set on the
  tokenizer before the data is prepared.
  `truncation_mode` "keep_start" cuts the end of an over-long conversation, "keep_end" its start
  (keeping the last assistant turn whole).
- prompt-completion and conversational prompt-completion: TRL prepares them as usual and marks the
  prompt with label -100; plw turns those labels back into a `completion_mask`, restores the labels
  and weights prompt tokens by PLW, completion tokens by `completion_loss_weight`.
- `text` (plain language modelling): every token is completion.

Either way the prepared dataset is weight-free (token ids, completion mask, parts, message weights):
the trainer's `PLWDataCollator` weighs every batch with `PLWSFTConfig.token_weights()`.

`prompt_loss_weight` supersedes `completion_only_loss` and `assistant_only_loss`: PLW 0 is
completion-only (assistant-only) loss, PLW 1 loss on everything. `assistant_only_loss=True` is
accepted with PLW 0 and refused with any other PLW, which contradicts it.

A configured weight that applies to no token of a prepared dataset (PLW != 1 on `text` data, a role
weight on data without that role or on prompt-completion data, which has no roles) is logged as a
warning, not an error: one config often serves several datasets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from transformers.utils import logging as hf_logging
from trl import SFTConfig, SFTTrainer

from plw.batch import IGNORE_INDEX, PART_IDS
from plw.data.chat_templates import builtin_templates, chat_template_text
from plw.data.collator import PLWDataCollator
from plw.data.weights import TokenWeights
from plw.errors import PLWError
from plw.loss.config import LossConfig
from plw.training.trainer import DATA_COLUMNS, PLWLossMixin, make_loss_config

logger = hf_logging.get_logger("plw.sft")
# TRL's truncation_mode in plw's terms (see plw.data.tokenize.truncate).
TRUNCATION = {"keep_start": "right", "keep_end": "left"}
# Weight-free, per token [T] and nothing else, so TRL's pack_dataset (lists of one length only) packs
# them; the sample weight is always 1 here (no field is read). Labels are a copy of input_ids, kept
# because TRL refuses mask columns without labels in some paths.
_FEATURES = ("input_ids", "labels", "completion_mask", "token_parts", "message_weights")
# PLWSFTConfig's loss fields -> LossConfig's.
_LOSS_FIELDS = {"plw_normalizer": "normalizer", "label_smoothing_factor": "label_smoothing",
                "minkowski_lambda": "minkowski_lambda", "minkowski_p": "minkowski_p",
                "plw_loss_impl": "impl", "plw_chunk_size": "chunk_size"}  # fmt: skip


@dataclass
class PLWSFTConfig(SFTConfig):
    """`trl.SFTConfig` plus the PLW settings.

    The weight fields mean what `plw train`'s keys of the same names mean (`plw.training.config`);
    the chat weights apply to `messages` datasets. The loss settings are `loss_config()`, a
    `plw.loss.config.LossConfig` (which documents each) from plw_normalizer, label_smoothing_factor,
    minkowski_lambda, minkowski_p, plw_loss_impl and plw_chunk_size.
    """

    prompt_loss_weight: float = field(default=1.0, metadata={"help": "PLW in [0, 1]"})
    completion_loss_weight: float = field(default=1.0, metadata={"help": "completion weight in [0, 1]"})
    role_weights: dict | str | None = field(
        default=None,
        metadata={"help": "chat: weight in [0, 1] per role (system, user, assistant, tool), a dict or JSON"},
    )
    template_weight: float | None = field(
        default=None, metadata={"help": "chat: weight of the chat template's own tokens"}
    )
    earlier_assistant_weight: float | None = field(
        default=None, metadata={"help": "chat: weight of assistant turns before the last one"}
    )
    reasoning_weight: float | None = field(
        default=None, metadata={"help": "chat: share of its answer's weight an assistant's reasoning gets"}
    )
    chat_template: str | None = field(
        default=None,
        metadata={"help": "chat template for the tokenizer: a built-in (chatml), a Jinja file or a string"},
    )
    assistant_turns: str = field(
        default="all", metadata={"help": "chat: 'all' assistant turns are completion, or only the 'last'"}
    )
    plw_normalizer: str = field(default="weight_sum", metadata={"help": "LossConfig.normalizer"})
    minkowski_lambda: float = field(default=0.0, metadata={"help": "LossConfig.minkowski_lambda"})
    minkowski_p: float = field(default=2.0, metadata={"help": "LossConfig.minkowski_p"})
    plw_loss_impl: str = field(default="auto", metadata={"help": "LossConfig.impl"})
    plw_chunk_size: int = field(default=1024, metadata={"help": "LossConfig.chunk_size"})
    # Read from JSON on the command line, as TrainingArguments reads its dict fields.
    _VALID_DICT_FIELDS = [*SFTConfig._VALID_DICT_FIELDS, "role_weights"]

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.assistant_turns not in ("all", "last"):
            raise ValueError(f"assistant_turns must be 'all' or 'last', got {self.assistant_turns!r}")
        self.token_weights()  # validates every weight
        self.loss_config()  # and every loss setting
        self._take_chat_template_path()
        if self.chat_template is not None:
            try:
                chat_template_text(self.chat_template)
            except ValueError as err:
                raise ValueError(f"chat_template: {err}") from None

    def _take_chat_template_path(self) -> None:
        """TRL's `chat_template_path` naming what plw reads (a built-in, a template string, a Jinja
        file) becomes `chat_template`; a tokenizer to clone the template from stays TRL's."""
        path = self.chat_template_path
        if path is None or not _plw_template(path):
            return
        if self.chat_template is not None:
            raise ValueError("give chat_template or chat_template_path, not both")
        self.chat_template, self.chat_template_path = path, None

    def loss_config(self) -> LossConfig:
        """The loss settings of this config; a refused value is a ValueError naming its field here."""
        values = {name: getattr(self, key) for key, name in _LOSS_FIELDS.items()}
        return make_loss_config(values, {name: key for key, name in _LOSS_FIELDS.items()})

    def token_weights(self) -> TokenWeights:
        """The token weight spec these settings describe."""
        try:
            return TokenWeights(
                prompt=self.prompt_loss_weight,
                completion=self.completion_loss_weight,
                roles={k: v for k, v in (self.role_weights or {}).items() if v is not None},
                template=self.template_weight,
                earlier_assistant=self.earlier_assistant_weight,
                reasoning=self.reasoning_weight,
            )
        except PLWError as err:
            raise ValueError(str(err)) from err


def _plw_template(value: str) -> bool:
    """Whether plw reads this template value itself (TRL clones a tokenizer directory or hub id's)."""
    from pathlib import Path

    if value in builtin_templates() or "{{" in value or "{%" in value:
        return True
    return Path(value).expanduser().is_file()


def _restore_labels(example: dict[str, Any]) -> dict[str, Any]:
    """TRL's -100 labels become a completion mask and parts (the collator weighs them); prompt
    tokens get their labels back."""
    mask = [int(label != IGNORE_INDEX) for label in example["labels"]]
    parts = [PART_IDS["completion"] if m else PART_IDS["prompt"] for m in mask]
    return {"completion_mask": mask, "labels": list(example["input_ids"]), "token_parts": parts}


def _encode_messages(batch: dict[str, list], indices: list[int], **options: Any) -> dict[str, list]:
    """A batch of `messages` rows, tokenised as `plw train` does (weight-free: the collator weighs)."""
    from plw.data.sources import Record
    from plw.data.tokenize import encode_records

    tokenizer, name = options.pop("tokenizer"), options.pop("name")
    tools = batch.get("tools") or [None] * len(indices)
    rows = zip(batch["messages"], tools, indices, strict=True)
    records = [
        Record({"messages": messages, **({"tools": t} if t else {})}, f"{name} dataset row {i}")
        for messages, t, i in rows
    ]
    examples, _ = encode_records(records, tokenizer, fmt="chat", template="chat", **options)
    examples = [{**e, "labels": list(e["input_ids"])} for e in examples]
    return {key: [e[key] for e in examples] for key in _FEATURES}


class PLWSFTTrainer(PLWLossMixin, SFTTrainer):
    """`trl.SFTTrainer` with a fractional prompt loss weight; takes everything SFTTrainer takes."""

    def __init__(self, *args: Any, **kwargs: Any):
        config = kwargs.get("args")
        if config is None and len(args) > 1:
            config = args[1]
        if not isinstance(config, PLWSFTConfig):
            raise TypeError("PLWSFTTrainer needs args=PLWSFTConfig(...)")
        if config.assistant_only_loss:
            if config.prompt_loss_weight != 0:
                raise ValueError(
                    "assistant_only_loss=True means prompt_loss_weight=0, but prompt_loss_weight is "
                    f"{config.prompt_loss_weight}; set one of them, not both"
                )
            config.assistant_only_loss = False  # plw weights messages by role itself
        # TRL must mark the prompt so plw can weight it; PLW decides how much it counts.
        config.completion_only_loss = True
        self.token_weights = config.token_weights()  # before super().__init__, which prepares the data
        self.plw_chat_template = config.chat_template and chat_template_text(config.chat_template)
        super().__init__(*args, **kwargs)
        self._set_chat_template(self.processing_class)
        self.data_collator = PLWDataCollator(
            self.processing_class.pad_token_id if hasattr(self.processing_class, "pad_token_id") else 0,
            padding_free=self.padding_free,
            pad_to_multiple_of=config.pad_to_multiple_of,
            weights=self.token_weights,  # the one place this trainer's tokens are weighed
        )
        self._init_plw(config.loss_config())
        # Trainer's own label smoother would otherwise be applied on top of the PLW loss.
        self.label_smoother = None

    def _set_chat_template(self, processing_class) -> None:
        """The configured chat template on the tokenizer (also saved with the model)."""
        if self.plw_chat_template:
            getattr(processing_class, "tokenizer", processing_class).chat_template = self.plw_chat_template

    def _prepare_dataset(self, dataset, processing_class, args, packing, formatting_func, dataset_name):
        from trl.data_utils import maybe_convert_to_chatml

        self._set_chat_template(processing_class)  # TRL loads the tokenizer inside super().__init__
        if self._plw_renders(dataset, formatting_func):
            if "conversations" in (
                dataset.column_names or []
            ):  # as TRL reads them: from/value -> role/content
                dataset = dataset.map(maybe_convert_to_chatml, remove_columns="conversations")
            dataset = self._prepare_messages(dataset, processing_class, args, packing, dataset_name)
        else:
            dataset = super()._prepare_dataset(
                dataset, processing_class, args, packing, formatting_func, dataset_name
            )
            if "labels" in (dataset.column_names or []):
                dataset = dataset.map(_restore_labels)
        self._warn_unreached(dataset, dataset_name)
        return dataset

    def _plw_renders(self, dataset, formatting_func) -> bool:
        """Whether plw tokenises this dataset: conversational language modelling, text only."""
        columns = set(dataset.column_names or [])
        if formatting_func is not None or getattr(self, "_is_vision_dataset", False):
            return False
        return not {"input_ids", "prompt", "images", "image"} & columns and bool(
            {"messages", "conversations"} & columns
        )

    def _prepare_messages(self, dataset, processing_class, args, packing: bool, name: str):
        """Tokenise, then pack (as TRL would) a `messages` dataset; the collator weighs it."""
        from datasets import Dataset
        from trl.data_utils import pack_dataset

        map_kwargs = {"num_proc": args.dataset_num_proc} if isinstance(dataset, Dataset) else {}
        if "chat_template_kwargs" in (dataset.column_names or []):
            logger.warning("plw renders messages with the chat template alone: chat_template_kwargs unused")
        if packing and args.max_length is None:
            raise ValueError("When packing is enabled, `max_length` can't be `None`.")
        options = {
            "tokenizer": getattr(processing_class, "tokenizer", processing_class),
            "name": name,
            "max_length": args.max_length,
            "truncation": TRUNCATION[args.truncation_mode],
            "assistant_turns": args.assistant_turns,
        }
        before = len(dataset) if isinstance(dataset, Dataset) else None
        dataset = dataset.map(_encode_messages, batched=True, with_indices=True, fn_kwargs=options,
                              remove_columns=dataset.column_names, **map_kwargs)  # fmt: skip
        if before is not None and len(dataset) < before:
            logger.warning(
                "plw: %d of %d %s examples dropped: no assistant token fits in max_length %s",
                before - len(dataset), before, name, args.max_length,
            )  # fmt: skip
        if packing:
            if args.shuffle_dataset:
                dataset = dataset.shuffle(seed=args.seed)
            dataset = pack_dataset(dataset, args.max_length, args.packing_strategy, map_kwargs)
        if args.shuffle_dataset:
            dataset = dataset.shuffle(seed=args.seed)
        return dataset

    def _warn_unreached(self, dataset, name: str) -> None:
        """Warn about each configured weight that applies to no token of the prepared dataset."""
        from datasets import Dataset

        from plw.data.show import part_side_counts, unreached_weights

        if not isinstance(dataset, Dataset) or "token_parts" not in dataset.column_names:
            return  # an IterableDataset cannot be counted without consuming it
        counts = part_side_counts(dataset.select_columns(["token_parts", "completion_mask"]).to_list())
        for key in unreached_weights(self.token_weights, counts):
            logger.warning("plw: %s applies to no token of the %s dataset, so it has no effect", key, name)

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        self._signature_columns = list(dict.fromkeys([*self._signature_columns, *DATA_COLUMNS]))
