"""`evaluate` never loses a finished task: each is on disk before the next starts; bad -o fails first."""

from __future__ import annotations

import json

import pytest

import plw.evaluation.run
from plw.errors import PLWError
from plw.evaluation import DummyLM, evaluate


def test_finished_tasks_are_on_disk_when_a_later_task_is_cut_off(tiny_data, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real = plw.evaluation.run._run_task

    def ctrl_c_on_piqa(task, *args, **kwargs):
        if task.name == "piqa":
            raise KeyboardInterrupt
        return real(task, *args, **kwargs)

    monkeypatch.setattr(plw.evaluation.run, "_run_task", ctrl_c_on_piqa)
    with pytest.raises(KeyboardInterrupt):
        evaluate(DummyLM(), "arc_easy,piqa", data_dir=tiny_data, output_dir=out, progress=False)
    assert set(json.loads((out / "summary.json").read_text())) == {"arc_easy"}
    assert (out / "arc_easy.metrics.json").is_file() and not (out / "piqa.metrics.json").exists()
    assert not [p for p in out.iterdir() if ".tmp" in p.name]
    monkeypatch.setattr(plw.evaluation.run, "_run_task", real)
    again = DummyLM()
    evaluate(again, "arc_easy,piqa", data_dir=tiny_data, output_dir=out, progress=False)
    assert again.calls and all("Open" in c or "Dry" in c for c, _ in again.calls)  # only piqa reran


def test_an_output_dir_that_is_a_file_fails_before_any_task(tiny_data, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("x")
    lm = DummyLM()
    with pytest.raises(PLWError, match=f"^output directory: {taken} is a file; give a directory$"):
        evaluate(lm, "arc_easy", data_dir=tiny_data, output_dir=taken, progress=False)
    assert lm.calls == []
