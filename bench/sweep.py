"""Per-cell overhead of a sweep: start-up, imports, tokenisation and model load as a share of a cell.

Runs configs/studies/tiny.yaml (the real stories260K model, 2 optimizer steps per cell, a small
benchmark and the mechanism measures) or, with `--study quickstart`, the quickstart study
(SmolLM2-135M-Instruct + LoRA, a few dozen steps per cell) with the local executor, in a fresh study
directory and a fresh plw cache, so the first cell tokenises from scratch and the later ones hit the
shared cache.
Each cell's worker runs `timed_run_cell` below: the default cell runner with timers around the
imports, `plw.data.cache.encode_cached` and `plw.models.load_model`. The driver times each cell from
spawning its worker to recording its result.

    .venv/bin/python bench/sweep.py [--study tiny|quickstart] [--cells 3] [--keep DIR]

Columns (seconds): wall = the driver's view of the cell; spawn = process start until the worker
marks the cell running; imports = torch/transformers/trl/peft/plw; tokenise = training's
`encode_cached` call; load = model loads (training, then measuring); setup = the rest of training
outside its loop and its final validation pass (Trainer construction, saving the model); loop =
Trainer's training loop; val = the validation loss pass at the end of training (cells with
eval_data); eval, mech = benchmarks and mechanism measures. overhead = spawn + imports + tokenise +
load + setup, and share = overhead / wall. Exits non-zero only on a crash.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PLW_SHARED_DATA", REPO.parent / "shared" / "data"))
STUDIES = {name: REPO / "configs" / "studies" / f"{name}.yaml" for name in ("tiny", "quickstart")}


def timed_run_cell(spec, cell_dir):
    """The default runner with timers; adds run["bench"] = {imports_s, tokenize_s, load_s}."""
    start = time.time()
    # Everything a cell imports lazily, timed here at once: torch, transformers' Trainer, trl, peft,
    # the evaluation suite.
    import peft  # noqa: F401
    import torch  # noqa: F401
    from transformers import Trainer, TrainingArguments  # noqa: F401
    from trl.trainer.callbacks import RichProgressCallback  # noqa: F401

    import plw.data.cache as cache
    import plw.evaluation.run  # noqa: F401
    import plw.experiment.mechanisms  # noqa: F401
    import plw.models as models
    import plw.training.run  # noqa: F401
    import plw.training.trainer  # noqa: F401
    from plw.experiment.runner import run_cell

    timings = {"imports_s": time.time() - start, "tokenize_s": [], "load_s": []}

    def timed(function, key):
        def wrapper(*args, **kwargs):
            begin = time.time()
            try:
                return function(*args, **kwargs)
            finally:
                timings[key].append(time.time() - begin)

        return wrapper

    cache.encode_cached = timed(cache.encode_cached, "tokenize_s")
    models.load_model = timed(models.load_model, "load_s")
    result = run_cell(spec, cell_dir)
    result["run"]["bench"] = timings
    return result


class TimedExecutor:
    """Wraps an executor to time each cell from hand-over to result, as the driver sees it."""

    def __init__(self, inner):
        self.inner, self.begin, self.wall = inner, {}, {}

    def run(self, cell_dirs, events):
        outer = self

        class Events:
            def started(self, cell_dir):
                outer.begin[cell_dir] = time.time()
                events.started(cell_dir)

            def finished(self, cell_dir, state):
                outer.wall[cell_dir] = time.time() - outer.begin[cell_dir]
                events.finished(cell_dir, state)

            def poll(self):
                events.poll()

        self.inner.run(cell_dirs, Events())


def row(cell_dir: Path, wall: float, begin: float) -> dict:
    result = json.loads((cell_dir / "result.json").read_text())
    run, bench = result["run"], result["run"]["bench"]
    values = {
        "wall": wall,
        "spawn": run["started"] - begin,
        "imports": bench["imports_s"],
        "tokenise": bench["tokenize_s"][0] if bench["tokenize_s"] else 0.0,
        "load": sum(bench["load_s"]),
        "loop": run.get("train_time_s") or 0.0,
        "eval": run.get("eval_time_s") or 0.0,
        "mech": run.get("mechanisms_time_s") or 0.0,
    }
    train_load = bench["load_s"][0] if bench["load_s"] else 0.0
    metrics = json.loads((cell_dir / "train" / "metrics.json").read_text())
    values["val"] = float(metrics.get("eval_runtime") or 0.0)
    values["setup"] = (
        run["train_stage_s"] - values["loop"] - values["val"] - sum(bench["tokenize_s"][:1]) - train_load
    )
    values["overhead"] = sum(values[k] for k in ("spawn", "imports", "tokenise", "load", "setup"))
    values["share"] = values["overhead"] / wall
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", choices=STUDIES, default="tiny", help="shipped study to run")
    parser.add_argument("--cells", type=int, default=3, help="PLW levels (cells) to run")
    parser.add_argument("--keep", type=Path, help="study directory to keep (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.study == "tiny" and not (SHARED / "models" / "stories260K").is_dir():
        print(f"skipped: shared data not found at {SHARED}")
        return 0
    work = Path(tempfile.mkdtemp(prefix="plw-bench-sweep-"))
    os.environ["PLW_CACHE_DIR"] = str(work / "cache")  # cold: the first cell tokenises from scratch
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")])
    )
    from plw.experiment.driver import make_plan, run_plan
    from plw.experiment.executor_local import LocalExecutor
    from plw.experiment.study import load_study

    levels = [round(i / max(args.cells - 1, 1), 3) for i in range(args.cells)]
    overrides = [f"factors.plw={levels}", f"output_dir={args.keep or work / 'study'}"]
    if args.study == "tiny":
        overrides += [f"models.stories260K={SHARED / 'models' / 'stories260K'}",
                      f"datasets.alpaca.path={SHARED / 'instruct' / 'alpaca_5000.json'}",
                      f"eval.data_dir={SHARED / 'bench'}"]  # fmt: skip
    study_file = STUDIES[args.study]
    plan = make_plan(load_study(study_file, overrides), str(study_file))
    executor = TimedExecutor(LocalExecutor("sweep:timed_run_cell"))
    states = run_plan(plan, executor)
    if set(states.values()) != {"done"}:
        print(f"cells failed: {states}", file=sys.stderr)
        return 1
    print_table(plan, executor)
    tokenized = list((work / "cache" / "tokenized").glob("*.npz"))
    print(f"\ntokenised datasets in the shared cache after {len(plan.cells)} cells: {len(tokenized)}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def print_table(plan, executor) -> None:
    columns = (
        "wall",
        "spawn",
        "imports",
        "tokenise",
        "load",
        "setup",
        "loop",
        "val",
        "eval",
        "mech",
        "overhead",
        "share",
    )
    print(f"{'cell':<10}" + "".join(f"{c:>10}" for c in columns))
    rows = []
    for cell in plan.cells:
        cell_dir = plan.cell_dir(cell)
        rows.append(row(cell_dir, executor.wall[cell_dir], executor.begin[cell_dir]))
        print(f"{'plw=' + format(cell.plw, 'g'):<10}" + "".join(f"{rows[-1][c]:>10.2f}" for c in columns))
    first, second = rows[0]["tokenise"], rows[1]["tokenise"] if len(rows) > 1 else float("nan")
    ratio = second / first
    print(f"\ntokenisation: first cell {first:.3f} s, second cell {second:.3f} s (cached: {ratio:.2f}x)")
    mean_share = sum(r["share"] for r in rows) / len(rows)
    print(f"mean overhead share per cell: {mean_share:.0%}; the training loop itself: "
          f"{sum(r['loop'] for r in rows) / sum(r['wall'] for r in rows):.0%} of cell time")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
