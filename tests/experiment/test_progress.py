"""The sweep display: the running cells' stage and step, and the ETA of the grid."""

from __future__ import annotations

import io
import time

import pytest
from rich.console import Console

from plw.experiment.celldir import write_json_atomic, write_status
from plw.experiment.progress import SweepProgress, format_duration


def console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=120), out


def finish(cell, wall: float) -> None:
    write_json_atomic(cell / "result.json", {"rows": [], "run": {"wall_time_s": wall}})
    write_status(cell, "done")


def test_format_duration():
    assert [format_duration(s) for s in (None, 12.34, 185, 3720)] == ["-", "12.3 s", "3m 05s", "1h 02m"]


def test_no_eta_before_the_first_cell_then_mean_wall_times_cells_left(tmp_path):
    cells = [tmp_path / f"c{i}" for i in range(4)]
    for cell in cells:
        cell.mkdir()
    con, out = console()
    progress = SweepProgress(4, 0, con)
    for cell in cells:
        progress.started(cell)
    assert progress.eta() is None and "ETA after the first cell" in progress.grid_line()

    write_status(cells[0], "running", started=time.time() - 5)
    progress.poll()
    finish(cells[0], 100.0)
    progress.finished(cells[0], "done")
    assert progress.eta() == pytest.approx(300.0)  # 3 cells queued, none running yet, 100 s each
    assert "done   c0 (1m 40s); ETA of the rest 5m 00s" in out.getvalue()

    write_status(cells[1], "running", started=time.time() - 40)
    progress.poll()
    # One cell 40 s into its 100 s, two waiting: (2 x 100 + 60) / 1 cell in flight.
    assert progress.eta() == pytest.approx(260.0, abs=2.0)
    write_status(cells[2], "running", started=time.time() - 40)
    progress.poll()
    # Two in flight: (1 x 100 + 60 + 60) / 2.
    assert progress.eta() == pytest.approx(110.0, abs=2.0)
    assert "grid: 1 done, 0 failed, 1 queued, ETA 1m 4" in progress.grid_line()


def test_eta_counts_cells_not_yet_handed_over(tmp_path):
    """The local executor hands cells over one at a time; the ETA still covers the whole plan."""
    con, out = console()
    progress = SweepProgress(5, 1, con, todo=3)
    first = tmp_path / "c0"
    first.mkdir()
    progress.started(first)
    finish(first, 60.0)
    progress.finished(first, "done")
    assert progress.eta() == pytest.approx(120.0)
    assert "ETA of the rest 2m 00s" in out.getvalue()


def test_walls_of_earlier_runs_seed_the_eta(tmp_path):
    con, _ = console()
    progress = SweepProgress(3, 2, con, walls=[50.0, 70.0, None])
    progress.started(tmp_path / "c")
    assert progress.eta() == pytest.approx(60.0)


def test_running_cell_line_shows_the_training_step(tmp_path):
    cell = tmp_path / "c0"
    cell.mkdir()
    con = Console(file=io.StringIO(), force_terminal=True, width=120)
    with SweepProgress(1, 0, con) as progress:
        progress.started(cell)
        write_status(cell, "running", started=time.time(), stage="train", step=3, steps=16)
        progress.poll()
        (task,) = [t for t in progress.progress.tasks if t.id in progress.rows.values()]
        assert "train step 3/16" in task.description


def test_step_reporter_writes_the_status_at_most_every_interval(tmp_path):
    from types import SimpleNamespace

    from plw.experiment.celldir import read_status
    from plw.experiment.runner import step_reporter

    reporter = step_reporter(tmp_path, every_s=3600)
    for step in (1, 2, 3):
        reporter.on_step_end(
            None, SimpleNamespace(is_world_process_zero=True, global_step=step, max_steps=4), None
        )
    assert read_status(tmp_path)["step"] == 1  # steps 2 and 3 fell inside the interval
    reporter.on_step_end(None, SimpleNamespace(is_world_process_zero=True, global_step=4, max_steps=4), None)
    assert read_status(tmp_path)["step"] == 4  # the last step is always written
