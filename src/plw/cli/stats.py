"""`plw stats DATA`: generation ratio, token lengths and a recommended PLW for a dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from plw.cli.console import console, err_console
from plw.data.stats import DEFAULT_TOKENIZER

DATA_HELP = (
    "local .json/.jsonl/.csv/.parquet file, hub dataset id, or preset (alpaca, alpaca-cleaned, "
    "alpaca-short, dolly; NAME@FILE builds a preset from a local file)"
)
TOKENIZER_HELP = (
    "hub id, local directory, .gguf file, model alias, or SentencePiece .model file (read exactly with "
    "sentencepiece)"
)
STRICT_HELP = "fail on the first malformed record instead of skipping and counting it"


def stats_command(
    data: str = typer.Argument(..., help=DATA_HELP),
    tokenizer: str = typer.Option(DEFAULT_TOKENIZER, "--tokenizer", "-t", help=TOKENIZER_HELP),
    fmt: str = typer.Option("auto", "--format", "-f", help="auto, alpaca, prompt_completion or chat"),
    template: str = typer.Option(
        "auto", "--template", help="template for the templated Rg: auto, alpaca, chat, none"
    ),
    max_length: int = typer.Option(
        512, "--max-length", min=1, help="count records longer than this (templated)"
    ),
    config: str | None = typer.Option(None, "--config", help="hub dataset configuration"),
    split: str = typer.Option("train", "--split", help="hub split"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="only the first N records"),
    strict: bool = typer.Option(False, "--strict", help=STRICT_HELP),
    as_json: bool = typer.Option(False, "--json", help="print the statistics as JSON"),
    histogram: Path | None = typer.Option(
        None, "--histogram", help="write a PNG histogram of per-record ratios"
    ),
    train_config: Path | None = typer.Option(
        None, "--train-config", help="training config (YAML) whose token weights the weighted Rg uses"
    ),
    prompt_loss_weight: float | None = typer.Option(
        None, "--prompt-loss-weight", "--plw", min=0, max=1, help="PLW for the weighted Rg"
    ),
    completion_loss_weight: float | None = typer.Option(
        None, "--completion-loss-weight", min=0, max=1, help="completion weight for the weighted Rg"
    ),
    chat_template: str | None = typer.Option(
        None,
        "--chat-template",
        help="chat template for chat records: a built-in (chatml), a Jinja file or a template string "
        "(default: the training config's, else the tokenizer's own)",
    ),
) -> None:
    """Measure a dataset's generation ratio Rg and recommend a prompt loss weight."""
    from plw.data.chat_templates import apply_chat_template
    from plw.data.load import load_records
    from plw.data.options import EncodeOptions
    from plw.data.spm import load_any_tokenizer
    from plw.data.stats import analyse
    from plw.errors import PLWError
    from plw.files import check_output_path

    # Checks the format and template before anything slow loads; max_length only counts long records.
    options = EncodeOptions(fmt=fmt, template=template, max_length=max_length, skip_bad_records=not strict)
    if histogram is not None:
        check_output_path(histogram, what="--histogram")
    weights, turns, configured = token_weights(train_config, prompt_loss_weight, completion_loss_weight)
    chat, key = (chat_template, "--chat-template") if chat_template else (configured, "chat_template")
    if chat is not None:
        _check_chat_template(chat, key)  # before anything slow loads
    records = load_records(data, config=config, split=split, limit=limit)
    tok = apply_chat_template(load_any_tokenizer(tokenizer), chat, key=key)
    result, ratios = analyse(records, tok, options, weights=weights, assistant_turns=turns)
    result = {"data": data, "tokenizer": tokenizer, **result}
    failure = None
    if histogram is not None:
        try:
            result["histogram"] = str(write_histogram(ratios, histogram, result["generation_ratio"], data))
        except PLWError as err:  # the statistics are still shown: the work is not lost
            failure = err
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        print_stats(result)
    if failure is not None:
        raise failure


def _check_chat_template(value: str, key: str) -> None:
    """Check a chat template value (`plw.data.chat_templates`); PLWError naming `key` when bad."""
    from plw.data.chat_templates import chat_template_text
    from plw.errors import PLWError

    try:
        chat_template_text(value)
    except ValueError as err:
        raise PLWError(f"{key}: {err}") from None


def token_weights(
    config: Path | None, plw: float | None, completion: float | None
) -> tuple[Any, str, str | None]:
    """The weights of the weighted Rg (None: not asked for), the chat `assistant_turns` and the
    training config's `chat_template` (None without a config).

    A training config gives its weights (an 'auto' PLW: the recommended one); the options override.
    """
    from dataclasses import replace

    from plw.config import load_config
    from plw.data.weights import TokenWeights
    from plw.training.config import TrainConfig

    cfg = load_config(TrainConfig, config) if config is not None else None
    if cfg is None and plw is None and completion is None:
        return None, "all", None

    def weights(recommended: float) -> TokenWeights:
        given = {k: v for k, v in (("prompt", plw), ("completion", completion)) if v is not None}
        if cfg is None:
            return replace(TokenWeights(prompt=1.0), **given)
        auto = cfg.prompt_loss_weight == "auto"
        return replace(cfg.token_weights(recommended if auto else cfg.prompt_loss_weight), **given)

    return weights, cfg.data.assistant_turns if cfg else "all", cfg.chat_template if cfg else None


def print_stats(result: dict[str, Any]) -> None:
    """Rich tables of the statistics, then the recommendation."""
    from rich.table import Table

    table = Table(title=f"{result['data']} ({result['tokenizer']} tokens)", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for label, value in _summary_rows(result):
        table.add_row(label, value)
    if result["skipped"]:
        err_console.print(
            f"[yellow]skipped {result['skipped']} malformed record(s)[/] (training fails on them unless "
            f"skip_bad_records: true), e.g. {', '.join(result['skipped_where'][:3])}",
            highlight=False,
        )
    if result.get("templated_error"):
        err_console.print(
            f"[yellow]templated counts unavailable:[/] {result['templated_error']}", highlight=False
        )
    console.print(table)
    lengths = Table(title="token lengths per record")
    names = list(result["quantiles"]["prompt"])
    lengths.add_column("")
    for name in names:
        lengths.add_column(name, justify="right")
    for part, values in result["quantiles"].items():
        lengths.add_row(part, *(f"{values[n]:g}" for n in names))
    console.print(lengths)
    if result.get("parts"):
        console.print(parts_table(result))
    for key in result.get("unused_weights", []):
        err_console.print(f"[yellow]note:[/] {key} applies to no token of this data", highlight=False)
    if result["recommended_plw"] is not None:
        advice = f"[bold]recommended PLW: {result['recommended_plw']}[/] ({result['class']})"
        console.print(f"{advice}: {result['recommendation']}", highlight=False)


def parts_table(result: dict[str, Any]):
    """Templated tokens per part (each role for chat), with the weight mass when weights were given."""
    from rich.table import Table

    weighted = result.get("weights") is not None
    table = Table(title="templated tokens per part" + (" and their weight mass" if weighted else ""))
    names = ("part", "tokens", "share") + (("weight mass", "mass share") if weighted else ())
    for name in names:
        table.add_column(name, justify="left" if name == "part" else "right")
    for part, row in result["parts"].items():
        cells = [part, f"{row['tokens']:,}", f"{row['token_share']:.1%}"]
        if weighted:
            cells += [f"{row['weight_mass']:,.1f}", f"{row['mass_share']:.1%}"]
        table.add_row(*cells)
    return table


def _summary_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    templated = result.get("generation_ratio_templated")
    return [
        ("records", f"{result['records']:,} of {result['records_loaded']:,} ({result['skipped']} skipped)"),
        ("format", ", ".join(f"{k} {v:,}" for k, v in result["formats"].items())),
        ("prompt / completion tokens", f"{result['prompt_tokens']:,} / {result['completion_tokens']:,}"),
        ("Rg (raw, paper definition)", _num(result["generation_ratio"])),
        (f"Rg (templated: {result['template']})", _num(templated)),
        *_weighted_rows(result),
        ("mean per-record ratio", _num(result["ratio_mean"])),
        ("geometric mean per-record ratio", _num(result["ratio_geometric_mean"])),
        (f"records over {result['max_length']} tokens", str(result["over_max_length"])),
        ("class", result["class"]),
    ]


def _weighted_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    weights = result.get("weights")
    if weights is None:
        return []
    label = f"PLW {weights['prompt_loss_weight']:g}, completion {weights['completion_loss_weight']:g}"
    if (
        weights["role_weights"]
        or weights["template_weight"] is not None
        or weights["earlier_assistant_weight"] is not None
        or weights.get("reasoning_weight") is not None
    ):
        label += ", chat weights"
    return [(f"Rg (weighted: {label})", _num(result["generation_ratio_weighted"]))]


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def write_histogram(ratios: Any, path: Path, rg: float | None, title: str) -> Path:
    """A log-x histogram of per-record completion/prompt ratios, with Rg and 1 marked."""
    import logging

    import matplotlib

    matplotlib.use("Agg")
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # no font-cache chatter on first use
    import matplotlib.pyplot as plt
    import numpy as np

    from plw.errors import PLWError
    from plw.files import write_atomic

    values = np.asarray(ratios, dtype=float)
    values = values[values > 0]
    if not values.size:
        raise PLWError("no positive per-record ratios to plot")
    low, high = values.min(), values.max()
    bins = np.geomspace(low, high if high > low else low * 1.01, 50)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(values, bins=bins, color="#4c72b0")
    ax.set_xscale("log")
    ax.axvline(1.0, color="grey", linestyle=":", label="ratio 1 (short/long boundary)")
    if rg is not None:
        ax.axvline(rg, color="#c44e52", linestyle="--", label=f"Rg = {rg:.3g} (ratio of totals)")
    ax.set(xlabel="completion tokens / prompt tokens per record", ylabel="records", title=title)
    ax.legend()
    fig.tight_layout()
    path = path.expanduser()
    # The format is named, not guessed from the temporary file's name.
    fmt = path.suffix.lstrip(".").lower() or "png"
    try:
        write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=120, format=fmt))
    except ValueError as err:
        raise PLWError(f"{path}: cannot write histogram: {err}") from err
    finally:
        plt.close(fig)
    return path


def register(app: typer.Typer) -> None:
    app.command("stats")(stats_command)
