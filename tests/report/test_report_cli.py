"""`plw report` through typer."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from plw.cli.report import register


def test_report_command_writes_the_report(tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    lines = ["plw,task,metric,value"] + [
        f"{p},{t},acc,{v}"
        for p, vals in ((0, (0.3, 0.5)), (0.1, (0.4, 0.6)), (1, (0.35, 0.52)))
        for t, v in zip(("arc_easy", "piqa"), vals, strict=True)
    ]
    (study / "results.csv").write_text("\n".join(lines) + "\n")
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)
    result = CliRunner().invoke(app, ["report", str(study), "-o", str(tmp_path / "out"), "--bootstrap", "0"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "report.html").is_file() and (tmp_path / "out" / "report.md").is_file()
    assert "report.html" in result.output and "figures: 3" in result.output
