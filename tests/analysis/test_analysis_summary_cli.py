"""The analysis dict and `plw analyze`."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from plw.cli.analyze import analyze, register
from plw.errors import PLWError


@pytest.fixture
def app():
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def _noop() -> None:  # a second command keeps typer from collapsing to a single-command app
        pass

    return app


def test_analyze_json_has_the_documented_keys(sim, write_table, app):
    study = write_table(sim(datasets=("short", "long"), regularizers=("weight_decay=0.1",)))
    result = CliRunner().invoke(app, ["analyze", str(study), "--json", "--bootstrap", "20"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out["datasets"]) == {"long", "short"}
    for fit in [*out["datasets"].values(), out["pooled"]]:
        assert 0.1 < fit["critical_plw"] < 0.5
        lo, hi = fit["critical_plw_ci"]
        assert lo <= fit["critical_plw"] <= hi
        assert fit["p_value"] == fit["quadratic"]["p_value"] < 0.001
        assert fit["converged"] is True
        assert {
            "coefficients",
            "convergence",
            "critical_plw_ci_delta",
            "critical_plw_ci_bootstrap",
            "curve",
            "benchmark_curves",
            "verdict",
            "warnings",
            "not_estimable",
        } <= set(fit)
    assert "dataset[long]" in out["pooled"]["coefficients"]
    assert out["regularizers"] and out["relative_scores"] and out["mechanisms"]["trends"]
    assert isinstance(out["warnings"], list) and isinstance(out["not_estimable"], list)


def test_analyze_human_output(sim, write_table, app):
    study = write_table(sim())
    result = CliRunner().invoke(app, ["analyze", str(study), "--bootstrap", "0", "--backend", "mixedlm"])
    assert result.exit_code == 0, result.output
    assert "Quadratic term and critical PLW" in result.output
    assert "negative and significant" in result.output


def test_analyze_bad_input_raises_plw_error(tmp_path, app):
    with pytest.raises(PLWError, match="no such file"):
        analyze(tmp_path / "missing", json_out=False, backend="statsmodels", bootstrap=0, seed=0)
    result = CliRunner().invoke(app, ["analyze", str(tmp_path / "missing")])
    assert isinstance(result.exception, PLWError)  # main.py turns this into one line and exit 2
