"""`plw train CONFIG.yaml [key=value ...]`."""

from __future__ import annotations

from pathlib import Path

import typer

from plw.cli.console import console


def train_command(
    config: Path = typer.Argument(..., help="training config (YAML)"),
    overrides: list[str] | None = typer.Argument(
        None, help="key=value overrides, e.g. prompt_loss_weight=0.1"
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="re-tokenise instead of using the cache"),
    grace: float | None = typer.Option(
        None, "--grace", help="seconds from SIGTERM/SIGUSR1 to exit 75 with a checkpoint (default 25)"
    ),
) -> None:
    """Fine-tune a causal LM with a prompt loss weight."""
    from plw.config import load_config
    from plw.preemption import set_grace

    set_grace(grace)
    from plw.training.config import TrainConfig
    from plw.training.run import train

    cfg = load_config(TrainConfig, config, overrides)
    metrics = train(cfg, use_cache=not no_cache)
    console.print(
        f"[green]done[/]: PLW {metrics['prompt_loss_weight']}, final prompt loss "
        f"{metrics.get('final_prompt_loss', float('nan')):.4f}, completion loss "
        f"{metrics.get('final_completion_loss', float('nan')):.4f} -> {cfg.output_dir}"
    )


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
