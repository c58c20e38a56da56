"""The `plw train` configuration. Each field is documented here, once."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from plw.config import Strict
from plw.data.sources import LOCAL_SUFFIXES
from plw.data.weights import TokenWeights, Weight, unit_weight
from plw.loss.config import LossConfig
from plw.training.legacy import move_legacy_loss_keys

MAX_SEED = 2**32 - 1  # transformers.set_seed seeds numpy too, whose seeds are 0 .. 2**32 - 1


class Finite(Strict):
    """Base of the training config sections: inf and nan are refused in every float field."""

    # An infinite learning rate (say) would train to NaN weights and still exit 0.
    model_config = ConfigDict(allow_inf_nan=False)


class DataConfig(Finite):
    """Where records come from and how they are rendered."""

    path: str = Field(description="local .json/.jsonl/.csv/.parquet file, or a hub dataset id")
    config: str | None = Field(None, description="hub dataset configuration name")
    split: str = Field("train", description="hub split")
    format: Literal["auto", "alpaca", "prompt_completion", "chat"] = Field(
        "auto", description="record format; auto detects it from the keys"
    )
    template: Literal["auto", "alpaca", "chat", "none"] = Field(
        "auto",
        description="prompt template; auto = alpaca for Alpaca records, none for prompt/completion, "
        "chat (the tokenizer's chat template) for messages",
    )
    limit: int | None = Field(None, ge=1, description="use only the first N records")
    skip_bad_records: bool = Field(False, description="skip malformed records (counted) instead of failing")
    assistant_turns: Literal["all", "last"] = Field(
        "all", description="chat: which assistant turns are completion; with 'last', earlier ones weigh PLW"
    )
    sample_weight_field: str | None = Field(
        None,
        description="record field holding a per-record sample weight in [0, 1] that multiplies all its "
        "token weights (absent in a record: 1); null = no sample weights",
    )

    @field_validator("path")
    @classmethod
    def _local_file_exists(cls, value: str) -> str:
        from plw.data.presets import preset_local_file

        path = preset_local_file(value) or Path(value).expanduser()
        if path.suffix in LOCAL_SUFFIXES and not path.is_file():
            raise ValueError(f"data file not found: {value}")
        return value


class RoleWeights(Finite):
    """Chat: the weight of each role's message content; null weighs it by its side (PLW or completion)."""

    system: Weight | None = Field(None, description="system messages")
    user: Weight | None = Field(None, description="user messages")
    assistant: Weight | None = Field(
        None,
        description="assistant messages (the last turn, and earlier ones "
        "unless earlier_assistant_weight is set or assistant_turns is 'last')",
    )
    tool: Weight | None = Field(None, description="tool messages")


class LoraSettings(Finite):
    """LoRA adapters via peft; absent (null) means full fine-tuning."""

    r: int = Field(8, ge=1, description="adapter rank")
    alpha: float = Field(16, gt=0, description="scaling numerator (scale = alpha / r)")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the adapter input (a regulariser)")
    target_modules: list[str] | str = Field("all-linear", description="modules to adapt")


class Regularization(Finite):
    """The paper's comparison regularisers that are not part of the loss (label smoothing and the
    Minkowski penalty are: `loss:`)."""

    weight_decay: float = Field(0.0, ge=0, description="AdamW decoupled weight decay")
    dropout: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="written into every dropout field of the model config; null keeps the model's",
    )


class TrainConfig(Finite):
    """Everything `plw train` needs; validated before any model loads."""

    model: str = Field(description="hub id, local directory, .gguf file, or 'smollm2-135m-instruct'")
    tokenizer: str | None = Field(None, description="tokenizer to use; default: the model's")
    chat_template: str | None = Field(
        None,
        description="chat template set on the tokenizer: a built-in name (chatml), a Jinja file or a "
        "template string; checked to render two turns prefix-stably (plw.data.chat_templates); "
        "null keeps the tokenizer's own",
    )
    data: DataConfig = Field(description="training records")
    eval_data: DataConfig | None = Field(
        None, description="held-out records, evaluated every eval_steps and at the end"
    )
    prompt_loss_weight: float | Literal["auto"] = Field(
        description="PLW in [0, 1]: 0 masks the prompt, 1 is plain LM loss; 'auto' picks it from Rg"
    )
    completion_loss_weight: Weight = Field(1.0, description="weight of completion tokens")
    role_weights: RoleWeights = Field(
        default_factory=RoleWeights, description="chat: per-role weights of message content"
    )
    template_weight: Weight | None = Field(
        None,
        description="chat: weight of the chat template's own tokens (role headers, end-of-turn markers); "
        "null weighs them by their side, as PLW alone does",
    )
    earlier_assistant_weight: Weight | None = Field(
        None,
        description="chat: weight of assistant turns before the last one; null weighs them as the last "
        "(assistant_turns 'all') or as prompt (assistant_turns 'last')",
    )
    reasoning_weight: Weight | None = Field(
        None,
        description="chat: the share of its answer's weight an assistant turn's reasoning gets "
        "(reasoning_content / thinking fields, or ...</think> in the content); null: 1, as the answer",
    )
    max_length: int = Field(512, ge=8, description="maximum tokens per example")
    truncation: Literal["left", "right", "drop"] = Field(
        "left",
        description="left: cut prompt from the left, drop examples whose completion does not fit; "
        "right: cut the end; drop: drop over-long examples",
    )
    packing: bool = Field(False, description="pack examples into max_length rows, attention kept per example")
    loss: LossConfig = Field(
        default_factory=LossConfig,
        description="the weighted loss: normalizer, impl, chunk_size, label_smoothing, minkowski_lambda, "
        "minkowski_p (each documented in plw.loss.config.LossConfig)",
    )
    lora: LoraSettings | None = Field(None, description="LoRA settings; null = full fine-tuning")
    regularization: Regularization = Field(default_factory=Regularization, description="regularisers")
    precision: Literal["fp32", "bf16"] = Field("fp32", description="training precision")
    output_dir: str = Field(
        "outputs/train", description="where the model/adapter, config, logs and metrics go"
    )
    seed: int = Field(0, ge=0, le=MAX_SEED, description="random seed for data order and initialisation")
    epochs: float = Field(3.0, gt=0, description="training epochs (ignored when max_steps > 0)")
    max_steps: int = Field(-1, description="stop after this many optimizer steps; -1 = use epochs")
    learning_rate: float = Field(2e-5, gt=0, description="peak learning rate")
    batch_size: int = Field(4, ge=1, description="examples per device per micro-batch")
    gradient_accumulation_steps: int = Field(1, ge=1, description="micro-batches per optimizer step")
    lr_scheduler: str = Field("cosine", description="Transformers scheduler name (SchedulerType)")
    warmup_ratio: float = Field(
        0.03,
        ge=0,
        le=1,
        description="share of the run's optimizer steps spent on a linear warm-up from 0 to learning_rate, "
        "rounded up to whole steps: 0.5 warms up over the first half, 1.0 over every step; an explicit "
        "trainer_args.warmup_steps replaces it",
    )
    logging_steps: int = Field(10, ge=1, description="log losses every N optimizer steps")
    eval_steps: int | None = Field(None, ge=1, description="evaluate every N steps; null = only at the end")
    save_model: bool = Field(True, description="write the trained model or adapter to output_dir")
    checkpoint_steps: int | None = Field(
        None,
        ge=1,
        description="save a resumable checkpoint (weights, optimizer, scheduler, RNG) every N steps, "
        "keeping the latest; a rerun into the same output_dir resumes from it. null = no checkpoints",
    )
    report_to: list[str] = Field(
        default_factory=list,
        description="Trainer loggers (tensorboard, wandb, mlflow, ... as Transformers names them), "
        "or 'all' / 'none'",
    )
    trainer_args: dict[str, Any] = Field(
        default_factory=dict,
        validate_default=True,  # its validator checks the whole TrainingArguments, so it always runs
        description="any other transformers.TrainingArguments field, passed through",
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_loss_keys(cls, data: Any) -> Any:
        return move_legacy_loss_keys(data) if isinstance(data, dict) else data

    @field_validator("prompt_loss_weight")
    @classmethod
    def _plw_range(cls, value: float | str) -> float | str:
        return unit_weight(value) if isinstance(value, float | int) else value

    @model_validator(mode="after")
    def _some_token_counts(self) -> TrainConfig:
        chat = [*self.role_weights.model_dump().values(), self.template_weight, self.earlier_assistant_weight]
        if self.prompt_loss_weight == 0 and self.completion_loss_weight == 0 and not any(chat):
            raise ValueError("prompt_loss_weight and completion_loss_weight are both 0: no token would count")
        return self

    def token_weights(self, prompt_loss_weight: float) -> TokenWeights:
        """The token weight spec of this config, with PLW resolved ('auto' replaced by its value)."""
        roles = {role: w for role, w in self.role_weights.model_dump().items() if w is not None}
        return TokenWeights(
            prompt=prompt_loss_weight,
            completion=self.completion_loss_weight,
            roles=roles,
            template=self.template_weight,
            earlier_assistant=self.earlier_assistant_weight,
            reasoning=self.reasoning_weight,
        )

    @field_validator("chat_template")
    @classmethod
    def _template_renders(cls, value: str | None) -> str | None:
        from plw.data.chat_templates import chat_template_text

        if value is not None:
            chat_template_text(value)
        return value

    @field_validator("lr_scheduler")
    @classmethod
    def _known_scheduler(cls, value: str) -> str:
        from plw.training.arguments import scheduler_names

        if value not in scheduler_names():
            raise ValueError(f"unknown scheduler {value!r}; one of {', '.join(scheduler_names())}")
        return value

    @field_validator("report_to")
    @classmethod
    def _known_reporters(cls, value: list[str]) -> list[str]:
        from plw.training.arguments import reporter_names

        unknown = [name for name in value if name not in (*reporter_names(), "all", "none")]
        if unknown:
            raise ValueError(
                f"unknown logger {unknown[0]!r}; one of all, none, {', '.join(reporter_names())}"
            )
        if len(value) > 1 and {"all", "none"} & set(value):
            raise ValueError("'all' and 'none' stand alone, not in a list with other loggers")
        return value

    @field_validator("trainer_args")
    @classmethod
    def _valid_trainer_args(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        import math

        from transformers import TrainingArguments

        from plw.training.arguments import check_training_arguments

        known = {f.name for f in dataclasses.fields(TrainingArguments)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown TrainingArguments field(s): {', '.join(unknown)}")
        for key, item in value.items():
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"{key} must be a finite number, got {item}")
        if set(cls.model_fields) - {"trainer_args"} <= set(info.data):  # no earlier field failed
            check_training_arguments(cls.model_construct(**info.data, trainer_args=value))
        return value

    @field_validator("max_steps")
    @classmethod
    def _steps_or_epochs(cls, value: int) -> int:
        if value == 0 or value < -1:
            raise ValueError("must be -1 (use epochs) or positive")
        return value
