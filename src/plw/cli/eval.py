"""`plw eval --model M --tasks t1,t2 [--data-dir D] [--limit N] [--num-fewshot K] -o OUT`."""

from __future__ import annotations

from pathlib import Path

import typer

from plw.cli.console import console, err_console
from plw.evaluation.options import DTYPES, TEMPLATES, check_options


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
    data_dir: Path | None = typer.Option(None, "--data-dir", help="local benchmark files (hub row schema)"),
    limit: int | None = typer.Option(None, "--limit", help="score only the first N items of each task"),
    num_fewshot: int = typer.Option(0, "--num-fewshot", help="few-shot examples per prompt"),
    batch_size: int = typer.Option(16, "--batch-size", help="sequences per forward pass"),
    adapter: Path | None = typer.Option(None, "--adapter", help="LoRA adapter directory on top of --model"),
    judge: str | None = typer.Option(
        None, "--judge", help="alpaca_eval judge: local, endpoint, local:MODEL or a judge YAML"
    ),
    template: str = typer.Option(
        "alpaca", "--template", help=f"instruction prompt template: {', '.join(TEMPLATES)}"
    ),
    max_new_tokens: int | None = typer.Option(None, "--max-new-tokens", help="override generation budgets"),
    seed: int = typer.Option(1234, "--seed", help="few-shot sampling seed"),
    dtype: str = typer.Option("float32", "--dtype", help=f"weights dtype: {', '.join(DTYPES)}"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
) -> None:
    """Evaluate a model on benchmarks; writes OUT/<task>.jsonl and OUT/summary.json."""
    # One line naming the flag, before any model loads (evaluate checks the same rules again).
    check_options(
        dtype=dtype,
        template=template,
        batch_size=batch_size,
        limit=limit,
        num_fewshot=num_fewshot,
        max_new_tokens=max_new_tokens,
        flags=True,
    )
    from plw.files import check_output_path

    check_output_path(output, kind="dir", what="-o/--output")  # before the slow imports and model load
    from plw.evaluation.run import evaluate

    results = evaluate(
        model,
        tasks,
        data_dir=data_dir,
        limit=limit,
        num_fewshot=num_fewshot,
        output_dir=output,
        batch_size=batch_size,
        judge=judge,
        template=template,
        max_new_tokens=max_new_tokens,
        seed=seed,
        adapter=adapter,
        dtype=dtype,
        progress=progress,
    )
    if limit is not None:
        err_console.print(f"[yellow]note:[/] scores use the first {limit} items of each task only (--limit)")
    print_summary(results)
    console.print(f"results in {output}/summary.json")


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
