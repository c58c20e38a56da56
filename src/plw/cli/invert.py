"""`plw invert DATA -o OUT`: build a short-completion dataset by prompt inversion."""

from __future__ import annotations

from pathlib import Path

import typer

from plw.cli.console import console, err_console
from plw.cli.stats import DATA_HELP, STRICT_HELP, TOKENIZER_HELP
from plw.data.invert import DEFAULT_INVERSION_INSTRUCTION
from plw.data.stats import DEFAULT_TOKENIZER


def invert_command(
    data: str = typer.Argument(..., help=DATA_HELP),
    output: Path = typer.Option(..., "--output", "-o", help="output file: .json (a list) or .jsonl"),
    instruction: str = typer.Option(
        DEFAULT_INVERSION_INSTRUCTION, "--instruction", help="the fixed instruction of every inverted record"
    ),
    tokenizer: str = typer.Option(DEFAULT_TOKENIZER, "--tokenizer", "-t", help=TOKENIZER_HELP),
    fmt: str = typer.Option("auto", "--format", "-f", help="auto, alpaca or prompt_completion"),
    config: str | None = typer.Option(None, "--config", help="hub dataset configuration"),
    split: str = typer.Option("train", "--split", help="hub split"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="only the first N records"),
    strict: bool = typer.Option(False, "--strict", help=STRICT_HELP),
    no_rg: bool = typer.Option(False, "--no-rg", help="do not measure Rg before and after (no tokenizer)"),
) -> None:
    """Prompt-invert an instruction dataset: output -> input, instruction -> output."""
    from plw.data.invert import invert_records, write_records
    from plw.data.load import load_records
    from plw.data.sources import Record
    from plw.data.stats import check_format, generation_ratio
    from plw.errors import PLWError
    from plw.files import check_output_path

    check_format(fmt)
    if output.suffix not in (".json", ".jsonl"):
        raise PLWError(f"{output}: output must end in .json or .jsonl")
    if Path(data).expanduser().resolve() == output.expanduser().resolve():
        raise PLWError(f"{output}: refusing to overwrite the input file")
    check_output_path(output, what="-o/--output")
    records = load_records(data, config=config, split=split, limit=limit)
    skipped: list[str] = []
    rows = invert_records(records, instruction, fmt=fmt, skip_bad_records=not strict, skipped=skipped)
    if not rows:
        raise PLWError(f"{data}: no record could be inverted (first bad record: {skipped[0]})")
    path = write_records(rows, output)
    console.print(f"inverted {len(rows):,} of {len(records):,} records -> {path}", highlight=False)
    if skipped:
        err_console.print(
            f"[yellow]skipped {len(skipped)} malformed record(s)[/], e.g. {', '.join(skipped[:3])}",
            highlight=False,
        )
    if no_rg:
        return
    from plw.data.spm import load_any_tokenizer

    tok = load_any_tokenizer(tokenizer)
    before = generation_ratio(records, tok, fmt, skip_bad_records=True)
    after = generation_ratio([Record(row, f"{path}[{i}]") for i, row in enumerate(rows)], tok, "alpaca")
    console.print(f"Rg ({tokenizer} tokens): {before:.4g} before -> {after:.4g} after", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("invert")(invert_command)
