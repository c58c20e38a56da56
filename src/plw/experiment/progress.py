"""What a sweep shows: a rich progress display of the grid and the running cells, and cell tables.

On a terminal the display has one bar for the grid with an ETA and one line per running cell with
its stage (train with its step, eval, mechanisms) and elapsed time; elsewhere (logs, CI) one line
per finished cell, with the ETA of the rest.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from plw.experiment.celldir import error_line, read_result, read_status

STATE_STYLE = {
    "done": "green",
    "failed": "red",
    "running": "yellow",
    "interrupted": "magenta",
    "pending": "dim",
}


def format_duration(seconds: float | None) -> str:
    """'1h 02m', '3m 05s', '12.3 s' or '-'."""
    if seconds is None:
        return "-"
    if seconds >= 3600:
        return f"{int(seconds // 3600)}h {int(seconds % 3600 // 60):02d}m"
    if seconds >= 60:
        return f"{int(seconds // 60)}m {int(seconds % 60):02d}s"
    return f"{seconds:.1f} s"


class SweepProgress:
    """Progress of one sweep; implements the executors' `Events`.

    Args:
        total: cells in the study.
        already_done: cells finished before this run.
        console: where to draw.
        on_finished: called with (cell_dir, state) after each cell, before the display updates.
        walls: wall times (s) of cells finished before this run; they seed the ETA.
        todo: cells this run will run (default: all not already done).
    """

    def __init__(
        self, total: int, already_done: int, console: Console, on_finished=None, walls=(), todo=None
    ):
        self.console, self.on_finished = console, on_finished
        self.todo = total - already_done if todo is None else todo
        self.walls = [float(w) for w in walls if w]
        self.running_since: dict[Path, float] = {}
        self.live = console.is_terminal
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, disable=not self.live,
        )  # fmt: skip
        self.grid = self.progress.add_task("grid", total=total, completed=already_done)
        self.rows: dict[Path, Any] = {}
        self.queued: list[Path] = []
        self.counts = {"done": 0, "failed": 0}

    def __enter__(self) -> SweepProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def started(self, cell_dir: Path) -> None:
        self.queued.append(cell_dir)

    def poll(self) -> None:
        # A line appears only once a worker marks its cell running: Ray may queue many cells at once.
        for cell_dir in list(self.queued):
            status = read_status(cell_dir)
            if status.get("state") != "running":
                continue
            if cell_dir not in self.rows:
                self.rows[cell_dir] = self.progress.add_task("", total=None)
            self.running_since[cell_dir] = float(status.get("started", time.time()))
            elapsed = format_duration(time.time() - self.running_since[cell_dir])
            stage = status.get("stage", "start")
            if stage == "train" and status.get("steps"):
                stage += f" step {status.get('step', 0)}/{status['steps']}"
            self.progress.update(
                self.rows[cell_dir], description=f"  {cell_dir.name} [yellow]{stage}[/] {elapsed}"
            )
        self.progress.update(self.grid, description=self.grid_line())

    def eta(self) -> float | None:
        """Seconds until the grid is done: mean cell wall time x cells left, over the cells in flight.

        None until a cell has finished (before then there is no wall time to go by).
        """
        if not self.walls:
            return None
        mean, now = sum(self.walls) / len(self.walls), time.time()
        running = [now - since for since in self.running_since.values()]
        # The local executor hands over one cell at a time, Ray all at once: count from the plan.
        waiting = max(self.todo - sum(self.counts.values()) - len(running), 0)
        left = mean * waiting + sum(max(mean - elapsed, 0.0) for elapsed in running)
        return left / max(1, len(running))

    def grid_line(self) -> str:
        """'grid: 1 done, 0 failed, 2 queued, ETA 6m 10s'."""
        done, failed = self.counts["done"], self.counts["failed"]
        waiting = len(self.queued) - len(self.rows)
        eta = self.eta()
        when = f"ETA {format_duration(eta)}" if eta is not None else "ETA after the first cell"
        return f"grid: {done} done, {failed} failed, {waiting} queued, {when}"

    def retrying(self, cell_dir: Path, cause: str, attempt: int) -> None:
        """A cell's worker died; it runs again (attempt 2, 3, ...) from its last checkpoint."""
        line = f"[yellow]retry[/]  {cell_dir.name} (attempt {attempt}): {cause}"
        self.console.print(line, highlight=False, soft_wrap=True)  # one line, in logs too

    def finished(self, cell_dir: Path, state: str) -> None:
        if self.on_finished is not None:
            self.on_finished(cell_dir, state)
        self.counts[state] = self.counts.get(state, 0) + 1
        if cell_dir in self.queued:
            self.queued.remove(cell_dir)
        self.running_since.pop(cell_dir, None)
        task = self.rows.pop(cell_dir, None)
        if task is not None:
            self.progress.remove_task(task)
        self.progress.advance(self.grid)
        if state == "done":
            wall = ((read_result(cell_dir) or {}).get("run") or {}).get("wall_time_s")
            if wall:
                self.walls.append(float(wall))
            eta = self.eta() if self.todo > sum(self.counts.values()) else None
            rest = f"; ETA of the rest {format_duration(eta)}" if eta is not None else ""
            self.console.print(
                f"[green]done[/]   {cell_dir.name} ({format_duration(wall)}){rest}", highlight=False
            )
        elif state == "failed":
            self.console.print(f"[red]failed[/] {cell_dir.name}: {error_line(cell_dir)}", highlight=False)
        else:  # preempted (the driver says so once all have stopped)
            why = read_status(cell_dir).get("reason") or "stopped before it finished"
            line = f"[magenta]stopped[/] {cell_dir.name}: {why}; resumable"
            self.console.print(line, highlight=False, soft_wrap=True)
        self.poll()


def _text(value: Any) -> str:
    return "-" if value is None else str(value)


def cell_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str | None = None) -> Table:
    """A rich table of cells; a `state` column is coloured, cell ids are never wrapped."""
    table = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        right = column in ("plw", "seed", "#", "tokens", "params", "FLOPs", "wall")
        table.add_column(column, no_wrap=column == "cell", justify="right" if right else "left")
    for row in rows:
        texts = [_text(row.get(column, "")) for column in columns]
        styles = [STATE_STYLE.get(t) if c == "state" else None for c, t in zip(columns, texts, strict=True)]
        table.add_row(*(f"[{s}]{t}[/]" if s else t for s, t in zip(styles, texts, strict=True)))
    return table


def print_cells(
    console: Console, rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str | None = None
) -> None:
    """Print `cell_table`, at least as wide as its content so cell ids stay whole and copyable."""
    widths = [max([len(c), *(len(_text(r.get(c, ""))) for r in rows)]) + 3 for c in columns]
    needed = sum(widths) + 1
    if needed > console.width:  # a console cannot print wider than itself: use a wider one
        console = Console(file=console.file, width=needed, color_system=console.color_system,
                          force_terminal=console.is_terminal)  # fmt: skip
    console.print(cell_table(rows, columns, title))
