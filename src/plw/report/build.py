"""`plw report`: analyse a study and write figures, report.html, report.md and analysis.json.

Output layout (OUT defaults to STUDY_DIR/report, or <file stem>_report next to a results file):

    OUT/report.html      self-contained (figures embedded), sortable tables, config, versions
    OUT/report.md        Markdown summary, figures linked from figures/
    OUT/analysis.json    the full analysis (same as `plw analyze --json`)
    OUT/figures/*.png|svg

The output directory is checked before the analysis runs. A write that fails afterwards (disk full)
does not lose the fits: analysis.json is written first (to the temporary directory if OUT refuses
it), every other file is still attempted, and one error line then says what is missing.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path

import pandas as pd

from plw.analysis.results import load_results
from plw.analysis.scores import select_scores
from plw.analysis.summary import analyze_results, item_level_section
from plw.errors import PLWError
from plw.files import check_output_path, write_text_atomic
from plw.report import figures as figs
from plw.report.extra import interaction_figure, surface_figure
from plw.report.html import render_html
from plw.report.markdown import render_markdown
from plw.report.paired import forest_figure
from plw.report.plotting import save_figure
from plw.report.training import load_histories, loss_figure, mechanism_figure


def default_out(study: Path) -> Path:
    """STUDY_DIR/report for a directory, <stem>_report beside a file."""
    return study / "report" if study.is_dir() else study.with_name(f"{study.stem}_report")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "x"


def _title(results: pd.DataFrame, study: Path) -> str:
    names = [s for s in results["study"].unique() if s]
    return names[0] if len(names) == 1 else (study.name if study.is_dir() else study.stem)


def _figures(results, analysis, histories) -> list[tuple[str, str, object]]:
    """(name, title, Figure or None) for every figure of the report."""
    scores, _ = select_scores(results)
    none = scores[scores["regularizer"] == "none"]
    out = [("pooled", "Population curve and critical PLW per dataset", figs.pooled_figure(scores, analysis))]
    for name, fit in analysis["datasets"].items():
        out.append(
            (
                f"benchmarks-{_slug(name)}",
                f"Scores against PLW per benchmark: {name}",
                figs.benchmark_figure(none[none["dataset"] == name], fit),
            )
        )
    for factor, per in (analysis.get("interactions") or {}).items():
        for name, result in per.items():
            out.append((f"interaction-{_slug(factor)}-{_slug(name)}",
                        f"PLW curve per level of {factor}: {name}",
                        interaction_figure(scores[scores["dataset"] == name], result)))  # fmt: skip
    for name, result in (analysis.get("surface") or {}).items():
        out.append((f"surface-{_slug(name)}", f"Score over PLW and completion weight: {name}",
                    surface_figure(result)))  # fmt: skip
    out += _paired_figures(analysis)
    cell_plw = dict(zip(results["cell"], results["plw"], strict=True))
    out += [
        ("relative", "Relative aggregate score against PLW", figs.relative_figure(analysis)),
        ("mechanisms", "Mechanism measures against PLW", mechanism_figure(analysis)),
        ("losses", "Prompt and completion loss per cell", loss_figure(histories or {}, cell_plw)),
    ]
    return out


def _paired_figures(analysis: dict) -> list[tuple[str, str, object]]:
    """Forest plots of the paired per-item differences from the low and the high reference level."""
    paired = (analysis.get("item_level") or {}).get("paired") or {}
    refs = sorted({v for r in (paired.get("reference_levels") or {}).values() for v in r.values()})
    return [
        (f"paired-vs-plw-{_slug(f'{ref:g}')}", f"Paired per-item differences from PLW {ref:g}",
         forest_figure(paired, ref))
        for ref in refs
    ]  # fmt: skip


def build_report(
    study: str | Path,
    out: str | Path | None = None,
    backend: str = "statsmodels",
    bootstrap: int = 200,
    seed: int = 0,
    histories: dict[str, list[dict]] | None = None,
    items: str | Path | None = None,
) -> dict:
    """Analyse a study and write the report.

    Args:
        study: a study directory or a results file (see `plw.analysis.results.load_results`).
        out: the output directory (default: see `default_out`).
        backend: GLMM backend (statsmodels, mixedlm, glmmtmb).
        bootstrap: parametric bootstrap replicates for the critical PLW interval.
        seed: random seed of the bootstrap.
        histories: cell id -> Trainer log history; read from STUDY_DIR/cells/*/train/ when None.
        items: a per-item results file; by default the one beside the results (`find_items`).

    Returns:
        {"html", "markdown", "json": paths, "figures": [figure dicts], "analysis": the analysis}.

    Raises:
        PLWError: bad input (see `load_results`) or an unavailable backend.
    """
    study = Path(study)
    out_dir = Path(out) if out is not None else default_out(study)
    check_output_path(out_dir, kind="dir", what="report directory")  # before the (slow) fits
    results = load_results(study)
    analysis = analyze_results(results, backend=backend, bootstrap=bootstrap, seed=seed)
    section = item_level_section(study, results, items, seed)
    if section is not None:
        analysis["item_level"] = section
    if histories is None and study.is_dir():
        histories, warns = load_histories(study)
        analysis["warnings"] += warns
    failures: list[PLWError] = []
    json_path = _save_analysis(analysis, out_dir / "analysis.json", failures)
    fig_dir = out_dir / "figures"
    written = []
    for name, title, fig in _figures(results, analysis, histories):
        if fig is None:
            continue
        try:
            paths = save_figure(fig, fig_dir, name)
        except PLWError as err:
            failures.append(err)
            continue
        written.append(
            {
                "name": name,
                "title": title,
                "png": f"figures/{name}.png",
                "svg": f"figures/{name}.svg",
                "png_path": str(paths["png"]),
                "svg_path": str(paths["svg"]),
            }
        )
    config = study / "study.yaml"
    config_text = config.read_text() if study.is_dir() and config.is_file() else None
    title = _title(results, study)
    paths = {"html": out_dir / "report.html", "markdown": out_dir / "report.md", "json": json_path}
    for key, text in (
        ("markdown", lambda: render_markdown(analysis, written, title)),
        ("html", lambda: render_html(analysis, written, title, config_text, analysis["versions"])),
    ):
        try:
            write_text_atomic(paths[key], text())
        except PLWError as err:
            failures.append(err)
    if failures:
        raise PLWError(
            f"{out_dir}: {len(failures)} report file(s) not written (first: {failures[0]}); "
            f"the analysis is saved in {json_path}"
        )
    return {**paths, "figures": written, "analysis": analysis}


def _save_analysis(analysis: dict, path: Path, failures: list[PLWError]) -> Path:
    """Write analysis.json; if that fails, write it to the temporary directory so the fits survive."""
    text = json.dumps(analysis, indent=2, allow_nan=False)
    try:
        return write_text_atomic(path, text)
    except PLWError as err:
        failures.append(err)
    fallback = Path(tempfile.gettempdir()) / f"plw-analysis-{time.strftime('%Y%m%d-%H%M%S')}.json"
    try:
        return write_text_atomic(fallback, text)
    except PLWError as err:
        raise PLWError(f"{failures[-1]}; nor could the analysis be saved to {fallback}") from err
