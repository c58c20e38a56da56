"""The `glmmtmb` backend: the paper's beta GLMM fitted by R's glmmTMB through Rscript.

Python builds the design (the same columns the statsmodels backends use), writes it to a temporary
CSV, runs `glmmtmb_fit.R` (next to this module) and reads back the CSV files it writes. The model
is y ~ w + w2 (+ sum-coded model / dataset) + (1 | benchmark) with a beta family and logit link:
the paper's model with a true random intercept.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from plw.analysis.design import FitData
from plw.analysis.fit import FitResult
from plw.analysis.glmm import diagnose
from plw.errors import PLWError

R_SCRIPT = Path(__file__).with_name("glmmtmb_fit.R")
TIMEOUT_S = 1800


@functools.lru_cache(maxsize=1)
def glmmtmb_status() -> tuple[bool, str]:
    """Whether the backend can run: (available, reason when not)."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return False, "Rscript is not on PATH (install R, e.g. apt-get install r-cran-glmmtmb)"
    if not R_SCRIPT.is_file():
        return False, f"the R script {R_SCRIPT} is missing from the installation"
    probe = subprocess.run(
        [rscript, "-e", "suppressPackageStartupMessages(library(glmmTMB))"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if probe.returncode != 0:
        return False, "the R package glmmTMB is not installed (apt-get install r-cran-glmmtmb)"
    return True, ""


def _columns(data: FitData) -> tuple[pd.DataFrame, dict[str, str]]:
    """The CSV for R with syntactic column names, and the map back to plw's term names."""
    names = {"w": "w", "w2": "w2"}
    table = pd.DataFrame({"y": data.frame["y"].to_numpy(), "benchmark": data.frame["benchmark"].to_numpy()})
    for i, col in enumerate(c for c in data.exog.columns if c != "Intercept"):
        safe = names.get(col, f"c{i}")
        names[col] = safe
        table[safe] = data.exog[col].to_numpy()
    return table, {safe: col for col, safe in names.items() if col in data.exog.columns}


def _run(table: pd.DataFrame, bootstrap: int, seed: int, workdir: Path) -> None:
    table.to_csv(workdir / "input.csv", index=False)
    cmd = ["Rscript", str(R_SCRIPT), str(workdir / "input.csv"), str(workdir), str(bootstrap), str(seed)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as err:
        raise PLWError(f"glmmTMB backend: Rscript did not finish within {TIMEOUT_S} s") from err
    if done.returncode != 0 or not (workdir / "coef.csv").is_file():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise PLWError(f"glmmTMB backend: Rscript failed ({last})")


def _info(workdir: Path) -> dict[str, str]:
    info = pd.read_csv(workdir / "info.csv", dtype=str, keep_default_na=False)
    return dict(zip(info["key"], info["value"], strict=True))


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def fit_glmmtmb(data: FitData, bootstrap: int = 0, rng: np.random.Generator | None = None) -> FitResult:
    """Fit the beta GLMM with glmmTMB.

    Args:
        data: from `design.prepare`.
        bootstrap: parametric bootstrap replicates (simulate() and refit, in R).
        rng: seeds R's simulation.

    Returns:
        The FitResult, on the same terms and scale as the statsmodels backends'.

    Raises:
        PLWError: R or glmmTMB is missing, or the R script fails.
    """
    ok, reason = glmmtmb_status()
    if not ok:
        raise PLWError(f"backend glmmtmb is unavailable: {reason}")
    table, back = _columns(data)
    seed = int((rng or np.random.default_rng(0)).integers(1, 2**31 - 1))
    with tempfile.TemporaryDirectory(prefix="plw-glmmtmb-") as tmp:
        workdir = Path(tmp)
        _run(table, bootstrap if data.quadratic else 0, seed, workdir)
        return _read_fit(workdir, back, data, bootstrap)


def _read_fit(workdir: Path, back: dict[str, str], data: FitData, bootstrap: int) -> FitResult:
    rename = {"(Intercept)": "Intercept", **back}
    coef = pd.read_csv(workdir / "coef.csv").set_index("term").rename(index=rename)
    vcov = pd.read_csv(workdir / "vcov.csv", index_col=0).rename(index=rename, columns=rename)
    info = _info(workdir)
    offsets = {b: 0.0 for b in data.benchmarks}
    if (workdir / "ranef.csv").is_file():
        re = pd.read_csv(workdir / "ranef.csv", dtype={"benchmark": str})
        offsets = dict(zip(re["benchmark"], re["offset"].astype(float), strict=True))
    opt_ok = info.get("optimizer_convergence") == "0"
    hess_ok = info.get("pdHess") == "TRUE"
    grad = _float(info.get("max_abs_gradient", "nan")) / max(len(data.frame), 1)
    messages = [m for m in info.get("warnings", "").split(" | ") if m]
    converged, sentence = diagnose(opt_ok, None, grad, hess_ok, messages, warnings_fail=True)
    names = list(data.exog.columns)
    fit = FitResult(
        backend="glmmtmb",
        params=coef.loc[names, "estimate"].astype(float),
        cov=vcov.loc[names, names].astype(float),
        pvalues=coef.loc[names, "p_value"].astype(float),
        benchmark_offsets=offsets,
        converged=converged,
        convergence=f"{sentence} (optimizer: {info.get('optimizer_message')})",
        loglik=_float(info.get("loglik", "nan")),
        extra={
            "precision_phi": _float(info.get("phi", "nan")),
            "benchmark_variance": _float(info.get("benchmark_variance", "nan")),
            "versions": {"glmmTMB": info.get("glmmTMB_version"), "R": info.get("R_version")},
        },
        messages=messages,
    )
    linear = _float(info.get("loglik_linear", "nan"))
    if np.isfinite(linear):
        fit.lr_stat = float(2 * (fit.loglik - linear))
    if (workdir / "boot.csv").is_file():
        boot = pd.read_csv(workdir / "boot.csv")
        fit.boot, fit.boot_requested = boot[["b1", "b2"]].to_numpy(dtype=float).reshape(-1, 2), bootstrap
    return fit
