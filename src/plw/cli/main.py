"""Entry point: builds the typer app from each command module and maps errors to exit codes.

A `PLWError` (bad config, missing file, malformed record) prints one line and exits 2; Ctrl-C exits
130 after saying that finished work is kept; SIGTERM / SIGUSR1 during `plw train` or `plw sweep`
saves a checkpoint and exits 75 (`plw.preemption`), saying what a rerun resumes.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import typer

from plw.cli.console import err_console
from plw.errors import PLWError
from plw.preemption import EXIT_CODE as PREEMPTED_EXIT
from plw.preemption import Preempted

# Each module defines `register(app)`; a module that is not there yet is skipped.
COMMAND_MODULES = (
    "train",
    "stats",
    "show",
    "invert",
    "eval",
    "sweep",
    "analyze",
    "report",
    "demo",
    "synth",
    "power",
)

app = typer.Typer(
    name="plw",
    help="Instruction fine-tuning with a fractional prompt loss weight (PLW).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Instruction fine-tuning with a fractional prompt loss weight (PLW)."""


def _register_all() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"plw.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"plw.cli.{name}":
                continue
            raise
        module.register(app)


_register_all()


def main() -> None:
    """Run the CLI."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("httpx", "urllib3", "datasets", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        app()
    except PLWError as err:
        err_console.print(f"[red]error:[/] {err}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except Preempted as stop:
        err_console.print(str(stop), highlight=False, soft_wrap=True)
        sys.exit(PREEMPTED_EXIT)
    except KeyboardInterrupt:  # outside a command (typer handles those, below)
        _interrupted()
    except SystemExit as stop:
        # Typer turns a KeyboardInterrupt inside a command into a silent `Exit(130)`; no command
        # exits 130 by itself, so that code means Ctrl-C.
        if stop.code == 130:
            _interrupted()
        raise


def _interrupted() -> None:
    err_console.print("interrupted: finished work is kept; rerun the same command to resume", highlight=False)
    sys.exit(130)


if __name__ == "__main__":
    main()
