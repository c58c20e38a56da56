"""Typed CLI options shared by several commands, each declared (and its help written) once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

StudyResults = Annotated[
    Path, typer.Argument(help="study directory (with results.csv / .parquet) or a results file")
]
Backend = Annotated[str, typer.Option("--backend", help="statsmodels | mixedlm | glmmtmb")]
Bootstrap = Annotated[
    int, typer.Option("--bootstrap", min=0, help="parametric bootstrap replicates (0: none)")
]
BootstrapSeed = Annotated[int, typer.Option("--seed", help="random seed of the bootstrap")]
ItemsFile = Annotated[
    Path | None,
    typer.Option("--items", help="per-item results file (default: the one beside the results, if any)"),
]
