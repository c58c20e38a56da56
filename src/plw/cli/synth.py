"""`plw synth -o DIR`: write the seeded synthetic instruction suite (train.jsonl, eval.jsonl)."""

from __future__ import annotations

from pathlib import Path

import typer

from plw.cli.console import console


def synth_command(
    output: Path = typer.Option(..., "--output", "-o", help="folder for train.jsonl, eval.jsonl, suite.json"),
    seed: int = typer.Option(0, "--seed", help="random seed; the same seed gives identical files"),
    n_train: int = typer.Option(400, "--train", min=0, help="train records"),
    n_eval: int = typer.Option(100, "--eval", min=0, help="held-out records"),
    families: str | None = typer.Option(
        None, "--families", help="comma-separated families (default: all); see docs/synthetic.md"
    ),
    long_share: float = typer.Option(
        0.2, "--long-share", min=0.0, max=1.0, help="share of long-completion records"
    ),
) -> None:
    """Generate the synthetic instruction suite: known answers, mostly short completions (Rg < 1)."""
    from plw.data.synthetic import family_table, generate, write_suite

    names = parse_families(families)
    kwargs = {"seed": seed, "n_train": n_train, "n_eval": n_eval, "families": names, "long_share": long_share}
    paths = write_suite(output, **kwargs)
    train, held_out = generate(**kwargs)  # cheap (milliseconds) and identical to what was written
    print_table(family_table(train, held_out), seed)
    console.print(f"wrote {len(train)} train -> {paths['train']}", highlight=False)
    console.print(f"wrote {len(held_out)} eval -> {paths['eval']}", highlight=False)


def parse_families(text: str | None) -> list[str] | None:
    """`"a, b"` -> `["a", "b"]`; None stays None (all families). Names are checked by `generate`."""
    if text is None:
        return None
    return [name.strip() for name in text.split(",") if name.strip()]


def print_table(rows: list[dict], seed: int) -> None:
    """Per-family counts and word-level Rg as a rich table."""
    from rich.table import Table

    table = Table(title=f"synthetic suite, seed {seed}", caption="word Rg: output / prompt words")
    for name, justify in (("family", "left"), ("kind", "left"), ("train", "right"), ("eval", "right")):
        table.add_column(name, justify=justify)
    table.add_column("word Rg", justify="right")
    for i, row in enumerate(rows):
        cells = (row["family"], row["kind"], str(row["train"]), str(row["eval"]), f"{row['word_rg']:.3f}")
        table.add_row(*cells, end_section=i == len(rows) - 2)  # a rule above the "all" row
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("synth")(synth_command)
