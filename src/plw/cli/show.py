"""`plw show [DATA] [key=value ...] --config C -n 3`: examples as the model sees them, weights coloured."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from plw.cli.console import console, err_console
from plw.data.stats import DEFAULT_TOKENIZER

# Weight 0 is grey, weight 1 bright; linear in between, as the loss is. Reasoning tokens (an
# assistant's thinking) run to a colour of their own, so reasoning and answer are told apart.
LOW, HIGH = (110, 110, 110), (255, 215, 0)
HIGHS = {"reasoning": (0, 200, 255), "reasoning_earlier": (0, 200, 255)}
LEGEND_STEPS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)


def show_command(
    data: str | None = typer.Argument(None, help="records to show (default: the config's data.path)"),
    overrides: list[str] | None = typer.Argument(
        None, help="key=value config overrides, as for plw train (e.g. max_length=256)"
    ),
    config: Path | None = typer.Option(None, "--config", "-c", help="training config (YAML)"),
    examples: int = typer.Option(3, "-n", "--examples", min=1, help="how many examples to show"),
    model: str | None = typer.Option(
        None, "--model", "-m", help=f"model or tokenizer (default: the config's, else {DEFAULT_TOKENIZER})"
    ),
    prompt_loss_weight: str | None = typer.Option(
        None, "--prompt-loss-weight", "--plw", help="PLW in [0, 1] or 'auto' (required without --config)"
    ),
    completion_loss_weight: float | None = typer.Option(
        None, "--completion-loss-weight", help="weight of completion tokens (default 1)"
    ),
    chat_template: str | None = typer.Option(
        None, "--chat-template", help="chat template: a built-in (chatml), a Jinja file or a template string"
    ),
    as_json: bool = typer.Option(False, "--json", help="print tokens, ids, weights and parts as JSON"),
) -> None:
    """Show examples tokenised and weighted exactly as `plw train` would, each token coloured by weight."""
    from plw.config import apply_overrides, read_yaml, validate
    from plw.training.config import TrainConfig

    overrides = list(overrides or [])
    if data is not None and "=" in data and not Path(data).exists():
        data, overrides = None, [data, *overrides]  # `plw show --config C key=value`: no DATA given
    raw = read_yaml(config) if config is not None else {}
    settings = {"model": model, "prompt_loss_weight": prompt_loss_weight,
                "completion_loss_weight": completion_loss_weight, "chat_template": chat_template}  # fmt: skip
    raw.update({k: v for k, v in settings.items() if v is not None})
    raw.setdefault("model", DEFAULT_TOKENIZER)
    if data is not None:
        raw["data"] = {**(raw["data"] if isinstance(raw.get("data"), dict) else {}), "path": data}
    if isinstance(raw.get("prompt_loss_weight"), str) and raw["prompt_loss_weight"] != "auto":
        raw["prompt_loss_weight"] = _number(raw["prompt_loss_weight"])
    cfg = validate(TrainConfig, apply_overrides(raw, overrides), str(config) if config else "plw show")
    result = shown_examples(cfg, examples)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        print_shown(result)


def _number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text  # validation names the key and the bad value


def shown_examples(cfg: Any, count: int) -> dict[str, Any]:
    """The first `count` examples of the config's data, built by training's own `build_dataset` and
    weighed by the function its collator calls (`plw.data.weights.example_weights`)."""
    from plw.data.show import (
        part_side_counts,
        show_examples,
        summarise,
        unreached_weights,
        weight_settings,
    )
    from plw.models import load_tokenizer
    from plw.training.run import build_dataset, record_reader, resolve_prompt_loss_weight

    tokenizer = load_tokenizer(cfg.tokenizer or cfg.model, chat_template=cfg.chat_template)
    limit = min(count, cfg.data.limit or count)
    data = cfg.data.model_copy(update={"limit": limit})
    # PLW 'auto' reads the whole source for its Rg; the examples shown are then its first records.
    whole = record_reader(cfg.data)
    plw, _ = resolve_prompt_loss_weight(cfg, tokenizer, whole)
    first = (lambda: whole()[:limit]) if cfg.prompt_loss_weight == "auto" else None
    weights = cfg.token_weights(plw)
    # Unpacked, uncached: the examples one by one, exactly as tokenised for training.
    unpacked = cfg.model_copy(update={"packing": False})
    dataset, report = build_dataset(data, tokenizer, unpacked, weights, use_cache=False, records=first)
    rows = dataset.to_list()
    return {
        "data": cfg.data.path,
        "model": cfg.tokenizer or cfg.model,
        "prompt_loss_weight": plw,
        "weights": weight_settings(weights),
        "records": limit,
        "dropped": report.dropped,
        "skipped": len(report.skipped),
        "examples": [example.as_dict() for example in show_examples(rows, tokenizer, weights)],
        "summary": summarise(rows, weights),
        "unused_weights": unreached_weights(weights, part_side_counts(rows)),
    }


def colour(weight: float, part: str = "") -> str:
    """The colour of a weight on its part's grey-to-bright scale (`HIGHS`, else gold), as a rich colour."""
    w = min(max(weight, 0.0), 1.0)
    high = HIGHS.get(part, HIGH)
    r, g, b = (round(lo + (hi - lo) * w) for lo, hi in zip(LOW, high, strict=True))
    return f"rgb({r},{g},{b})"


def print_shown(result: dict[str, Any]) -> None:
    """Each example with its tokens coloured by weight, a legend, then the summary per part."""
    from rich.text import Text

    for example in result["examples"]:
        console.rule(f"example {example['index']} ({len(example['ids'])} tokens)")
        text = Text()
        for token, weight, part in zip(example["tokens"], example["weights"], example["parts"], strict=True):
            text.append(token.replace("\n", "\u21b5\n"), style=colour(weight, part))
        console.print(text)
    console.print(legend("weight: ", ""))
    if any(p in HIGHS for example in result["examples"] for p in example["parts"]):
        console.print(legend("reasoning: ", "reasoning"))
    if result["dropped"] or result["skipped"]:
        console.print(
            f"of the first {result['records']} records, {result['dropped']} dropped as too long and "
            f"{result['skipped']} skipped as malformed",
            highlight=False,
        )
    console.print(summary_table(result))
    ratio = result["summary"]["generation_ratio_weighted"]
    console.print(
        "generation ratio under these weights (completion / prompt weight mass): "
        + ("n/a (no prompt weight)" if ratio is None else f"{ratio:.4g}"),
        highlight=False,
    )
    for key in result["unused_weights"]:
        err_console.print(f"[yellow]note:[/] {key} applies to no token shown", highlight=False)


def legend(label: str, part: str):
    """A row of colour swatches for `LEGEND_STEPS` on a part's scale."""
    from rich.text import Text

    out = Text(label)
    for step in LEGEND_STEPS:
        out.append("\u2588\u2588", style=colour(step, part)).append(f" {step:g}  ")
    return out


def summary_table(result: dict[str, Any]):
    """Tokens and weight mass per part."""
    from rich.table import Table

    summary = result["summary"]
    table = Table(
        title=f"weight per part (PLW {result['prompt_loss_weight']:g}, {summary['examples']} examples)",
        caption="weight mass: over predicted tokens (not an example's first token)",
    )
    for name in ("part", "tokens", "token share", "weight mass", "mass share", "mean weight"):
        table.add_column(name, justify="left" if name == "part" else "right", no_wrap=name == "part")
    for part, row in summary["parts"].items():
        mean = "n/a" if row["mean_weight"] is None else f"{row['mean_weight']:.3g}"
        table.add_row(part, f"{row['tokens']:,}", f"{row['token_share']:.1%}", f"{row['weight_mass']:,.2f}",
                      f"{row['mass_share']:.1%}", mean)  # fmt: skip
    table.add_row(
        "total", f"{summary['tokens']:,}", "", f"{summary['weight_mass']:,.2f}", "", "", style="bold"
    )
    return table


def register(app: typer.Typer) -> None:
    app.command("show")(show_command)
