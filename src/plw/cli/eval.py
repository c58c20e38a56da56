"""`plw eval --model M --tasks t1,t2 [--data-dir D] [--limit N] [--num-fewshot K] -o OUT`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from plw.cli.console import console, err_console
from plw.errors import PLWError
from plw.evaluation.options import EvalOptions, OptionError, eval_options


def _option(field: str, *flags: str):
    """A typer option for an `EvalOptions` field: its default and description, as declared there."""
    info = EvalOptions.model_fields[field]
    return typer.Option(info.get_default(call_default_factory=True), *flags, help=info.description)


def eval_command(
    model: str = typer.Option(
        ..., "--model", "-m", help="model name, directory, GGUF file or LoRA adapter dir"
    ),
    tasks: str = typer.Option(
        ...,
        "--tasks",
        "-t",
        help="comma list: arc_easy, piqa, ..., aliases paper/wmt/multiple_choice, lmeval:NAME",
    ),
    output: Path = typer.Option(..., "--output", "-o", help="output directory (reruns skip finished tasks)"),
    data_dir: Path | None = _option("data_dir", "--data-dir"),
    limit: int | None = _option("limit", "--limit"),
    num_fewshot: int = _option("num_fewshot", "--num-fewshot"),
    batch_size: int = _option("batch_size", "--batch-size"),
    adapter: Path | None = _option("adapter", "--adapter"),
    judge: str | None = _option("judge", "--judge"),
    template: str = _option("template", "--template"),
    chat_template: str | None = _option("chat_template", "--chat-template"),
    max_new_tokens: int | None = _option("max_new_tokens", "--max-new-tokens"),
    seed: int = _option("seed", "--seed"),
    dtype: str = _option("dtype", "--dtype"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
) -> None:
    """Evaluate a model on benchmarks; writes OUT/<task>.jsonl and OUT/summary.json."""
    with _flag_names():
        # Validated once, before any model loads; evaluate takes them as they are.
        options = eval_options(
            tasks=tasks,
            data_dir=data_dir,
            limit=limit,
            num_fewshot=num_fewshot,
            batch_size=batch_size,
            adapter=adapter,
            judge=judge,
            template=template,
            chat_template=chat_template,
            max_new_tokens=max_new_tokens,
            seed=seed,
            dtype=dtype,
        )
        from plw.files import check_output_path

        check_output_path(output, kind="dir", what="-o/--output")  # before the slow imports and model load
        from plw.evaluation.run import evaluate

        results = evaluate(model, options, output, progress=progress)
    if limit is not None:
        err_console.print(f"[yellow]note:[/] scores use the first {limit} items of each task only (--limit)")
    print_summary(results)
    console.print(f"results in {output}/summary.json")


@contextmanager
def _flag_names() -> Iterator[None]:
    """Reword an `OptionError` with the flag a user typed (`batch_size` -> `--batch-size`)."""
    try:
        yield
    except OptionError as err:
        raise PLWError(f"--{err.field.replace('_', '-')}: {err.reason}") from None


def print_summary(results: dict[str, dict[str, float]]) -> None:
    """A table of task, metric, value and standard error."""
    from rich.table import Table

    table = Table("task", "metric", "value", "stderr")
    for task, metrics in results.items():
        for name, value in metrics.items():
            if name.endswith("_stderr"):
                continue
            stderr = metrics.get(f"{name}_stderr")
            table.add_row(task, name, f"{value:.4f}", "" if stderr is None else f"{stderr:.4f}")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
