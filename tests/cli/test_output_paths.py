"""Output paths are checked before any work, and a write that fails after the work keeps it.

Every failing case: exit code 2, one `error:` line naming the path, no traceback, no temporary file.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from support import RECORDS, assert_one_line_error, leftovers, write_records


@pytest.fixture
def data_file(tmp_path) -> Path:
    return write_records(tmp_path)


@pytest.fixture
def a_file(tmp_path) -> Path:
    path = tmp_path / "taken"
    path.write_text("not a directory")
    return path


def test_train_output_dir_that_is_a_file(plw_cli, tmp_path, data_file, a_file):
    config = tmp_path / "train.yaml"
    config.write_text(
        f"model: example-org/tiny-model\ndata: {{path: {data_file}}}\nprompt_loss_weight: 0.1\n"
        f"output_dir: {a_file}\n"
    )
    code, _, err = plw_cli("train", config)
    assert_one_line_error(code, err, f"output_dir: {a_file} is a file; give a directory")
    assert not leftovers(tmp_path)


def test_eval_output_under_a_file(plw_cli, tmp_path, a_file):
    code, _, err = plw_cli("eval", "--model", "example-org/m", "--tasks", "arc_easy", "-o", a_file / "out")
    assert_one_line_error(code, err, f"-o/--output: {a_file / 'out'} cannot be created: {a_file} is a file")
    assert not leftovers(tmp_path)


def test_invert_output_under_a_file(plw_cli, tmp_path, data_file, a_file):
    target = a_file / "sub" / "inverted.json"
    code, _, err = plw_cli("invert", data_file, "-o", target, "--no-rg")
    assert_one_line_error(code, err, f"-o/--output: {target} cannot be created: {a_file} is a file")
    assert not leftovers(tmp_path)


def test_stats_histogram_that_is_a_directory(plw_cli, tmp_path, data_file, monkeypatch):
    import plw.data.load

    def never(*args, **kwargs):
        raise AssertionError("the data must not be read before the output path is checked")

    monkeypatch.setattr(plw.data.load, "load_records", never)
    code, _, err = plw_cli("stats", data_file, "--histogram", tmp_path)
    assert_one_line_error(code, err, f"--histogram: {tmp_path} is a directory; give a file path")


def test_stats_still_prints_when_the_histogram_fails_after_the_work(
    plw_cli, tmp_path, data_file, stories_path
):
    target = tmp_path / "ratios.nope"  # a format matplotlib refuses, found only when writing
    code, out, err = plw_cli("stats", data_file, "-t", stories_path, "--json", "--histogram", target)
    assert_one_line_error(code, err, f"{target}: cannot write histogram")
    assert json.loads(out)["records"] == len(RECORDS)  # the statistics were not lost
    assert not target.exists() and not leftovers(tmp_path)


def test_report_out_that_is_a_file(plw_cli, tmp_path, a_file, monkeypatch):
    import plw.report.build

    monkeypatch.setattr(plw.report.build, "analyze_results", lambda *a, **k: pytest.fail("analysed first"))
    code, _, err = plw_cli("report", tmp_path / "missing.csv", "-o", a_file)
    assert_one_line_error(code, err, f"report directory: {a_file} is a file; give a directory")


def minimal_results(tmp_path: Path) -> Path:
    rows = ["plw,task,metric,value"] + [
        f"{p},{t},acc,{v}"
        for p, vals in ((0, (0.3, 0.5)), (0.1, (0.4, 0.6)), (1, (0.35, 0.52)))
        for t, v in zip(("arc_easy", "piqa"), vals, strict=True)
    ]
    path = tmp_path / "results.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_report_keeps_the_analysis_when_a_later_write_fails(plw_cli, tmp_path, monkeypatch):
    """Disk full while writing report.html: the rest is written, analysis.json holds the fits."""
    real = Path.write_bytes

    def disk_full_for_html(self, data):
        if self.name.startswith(".report.") and self.suffix == ".html":
            real(self, data[:10])  # half a file, as a full disk leaves it
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", disk_full_for_html)
    out = tmp_path / "out"
    code, _, err = plw_cli("report", minimal_results(tmp_path), "-o", out, "--bootstrap", "0")
    assert_one_line_error(
        code,
        err,
        f"{out}: 1 report file(s) not written",
        "report.html: cannot write: No space left on device",
        f"the analysis is saved in {out / 'analysis.json'}",
    )
    assert json.loads((out / "analysis.json").read_text())["pooled"]
    assert (out / "report.md").is_file() and list((out / "figures").glob("*.png"))
    assert not (out / "report.html").exists() and not leftovers(tmp_path)
