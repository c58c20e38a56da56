"""The driver on fake cells: store and CSV, resume, failures, retries, locking, status, crash isolation."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sweep_support
from typer.testing import CliRunner

from plw.analysis.results import RESULT_COLUMNS
from plw.errors import PLWError
from plw.experiment.celldir import ERROR, RESULT, read_status, write_status
from plw.experiment.driver import run_sweep
from plw.experiment.executor_local import LocalExecutor
from plw.experiment.lock import study_lock
from plw.experiment.plan import fingerprint, make_plan
from plw.experiment.status import study_status
from plw.experiment.store import ResultStore


def run(study, runner=sweep_support.ok, **kw):
    """Run in this process with a fake runner; return the states and the cell ids the runner saw."""
    sweep_support.CALLS.clear()
    states = run_sweep(study, executor=LocalExecutor(runner, isolate=False), **kw)
    return states, list(sweep_support.CALLS)


def table(study) -> pd.DataFrame:
    return ResultStore(study.directory() / "results.sqlite").results()


def test_run_writes_store_csv_and_runs(make_study):
    study = make_study(factors={"plw": [0.0, 1.0], "model": ["tiny"], "dataset": ["toy"], "seed": [0, 1]})
    states, calls = run(study)
    assert set(states.values()) == {"done"} and len(calls) == 4
    results = table(study)
    assert list(results.columns) == list(RESULT_COLUMNS) and len(results) == 8
    row = results[(results.plw == 1.0) & (results.seed == 1) & (results.metric == "acc_norm")].iloc[0]
    assert (
        row.value == pytest.approx(0.89)
        and row.stderr == 0.01
        and row.model == "tiny"
        and row.study == "fake"
    )
    assert row.cell == "plw=1__model=tiny__dataset=toy__seed=1__reg=none"
    csv = pd.read_csv(study.directory() / "results.csv")
    pd.testing.assert_frame_equal(csv, results, check_dtype=False)
    runs = ResultStore(study.directory() / "results.sqlite").runs()
    assert set(runs.status) == {"done"} and runs.torch_version.notna().all()
    assert (runs.tokens_per_second == 500.0).all() and (runs.wall_time_s >= 0).all()
    layers = ResultStore(study.directory() / "results.sqlite").layers()
    assert list(layers.value) == [0.0, 1.0, 0.0, 1.0]  # ordered by seed, then plw
    assert set(layers.metric) == {"weight_l2"}
    analysis = pytest.importorskip("plw.analysis.results", reason="analysis module not available")
    loaded = analysis.load_results(study.directory())
    assert len(loaded) == 8 and set(loaded.metric) == {"acc_norm", "loss_rsd"}


def test_resume_skips_done_cells_and_reruns_interrupted_ones_from_scratch(make_study):
    study = make_study()
    run(study)
    reference = table(study)
    victim = study.directory() / "cells" / "plw=0.5__model=tiny__dataset=toy__seed=0__reg=none"
    # What a killed driver leaves: status running, partial outputs, no result.
    (victim / RESULT).unlink()
    write_status(victim, "running", stage="train")
    (victim / "train" / "half-written.bin").write_bytes(b"\0" * 10)
    store = ResultStore(study.directory() / "results.sqlite")
    store.record_failure("fake", victim.name, "stale row the store must not keep")
    assert make_plan(study).states[victim.name] == "interrupted"
    states, calls = run(study)
    assert calls == [victim.name] and set(states.values()) == {"done"}
    assert not (victim / "train" / "half-written.bin").exists()
    pd.testing.assert_frame_equal(table(study), reference)
    _, calls = run(study)
    assert calls == []  # everything done: nothing reruns


def test_failed_cell_is_recorded_others_go_on_and_retry_reruns_only_it(make_study):
    study = make_study()
    states, calls = run(study, sweep_support.failing)
    failed = "plw=0.5__model=tiny__dataset=toy__seed=0__reg=none"
    assert states[failed] == "failed" and sum(s == "done" for s in states.values()) == 2
    error = (study.directory() / "cells" / failed / ERROR).read_text()
    assert error.startswith("RuntimeError: boom: synthetic failure") and "Traceback" in error
    runs = ResultStore(study.directory() / "results.sqlite").runs().set_index("cell")
    assert runs.loc[failed, "status"] == "failed" and "boom" in runs.loc[failed, "error"]
    assert failed not in set(table(study).cell)
    states, calls = run(study, sweep_support.failing)
    assert calls == [] and states[failed] == "failed"  # reported and skipped without --retry-failed
    states, calls = run(study, sweep_support.ok, retry_failed=True)
    assert calls == [failed] and set(states.values()) == {"done"}
    assert len(table(study)) == 6


def test_changed_settings_of_a_finished_cell_are_an_error(make_study):
    run(make_study())
    with pytest.raises(PLWError, match="other train/eval settings"):
        run(make_study(train={"max_steps": 2}))


def test_fingerprint_of_a_fixed_config_never_changes():
    # Finished cells stay done only while their fingerprint does: these values are what plw computed
    # before the driver was split, so a change here would rerun every finished cell of every study.
    from plw.training.config import TrainConfig

    data = {"model": "hf-internal-testing/tiny-random-gpt2", "data": {"path": "alpaca"},
            "prompt_loss_weight": 0.1, "seed": 3}  # fmt: skip
    config = TrainConfig.model_validate({**data, "output_dir": "/tmp/x"})
    moved = TrainConfig.model_validate({**data, "output_dir": "/elsewhere"})
    evaluation = {"tasks": ["arc_easy"], "limit": 5, "data_dir": None}
    assert fingerprint(config, evaluation) == fingerprint(moved, evaluation) == "a1402dca58957178"
    assert fingerprint(config, {}) == "900e93e7aafde9aa"


def test_fingerprint_is_the_same_for_the_old_and_the_new_loss_keys():
    # The loss settings moved into `loss:`; fingerprints hash the old layout, so a finished cell whose
    # config gave them at their old keys stays done. The value is what plw computed before the move.
    from plw.training.config import TrainConfig

    data = {"model": "hf-internal-testing/tiny-random-gpt2", "data": {"path": "alpaca"},
            "prompt_loss_weight": 0.1, "seed": 3, "output_dir": "/tmp/x"}  # fmt: skip
    old = {"normalizer": "nonzero", "loss_impl": "full", "chunk_size": 7,
           "regularization": {"weight_decay": 0.1, "label_smoothing": 0.1, "minkowski_lambda": 1e-3,
                              "minkowski_p": 1.5}}  # fmt: skip
    new = {"regularization": {"weight_decay": 0.1},
           "loss": {"normalizer": "nonzero", "impl": "full", "chunk_size": 7, "label_smoothing": 0.1,
                    "minkowski_lambda": 1e-3, "minkowski_p": 1.5}}  # fmt: skip
    evaluation = {"tasks": ["arc_easy"], "limit": 5, "data_dir": None}
    legacy = TrainConfig.model_validate({**data, **old})
    current = TrainConfig.model_validate({**data, **new})
    assert legacy == current
    assert fingerprint(legacy, evaluation) == fingerprint(current, evaluation) == "1e6d66d3e3dec2e6"


def test_a_second_driver_on_the_same_study_is_refused(make_study):
    study = make_study()
    with study_lock(study.directory()), pytest.raises(PLWError, match="another plw sweep"):
        run(study)


def test_status_counts_and_eta(make_study):
    study = make_study(factors={"plw": [0.0, 0.25, 0.5, 1.0], "model": ["tiny"], "dataset": ["toy"]})
    run(study, sweep_support.failing)
    cells = study.directory() / "cells"
    for name, wall in (("plw=0", 10.0), ("plw=1", 30.0)):
        path = cells / f"{name}__model=tiny__dataset=toy__seed=0__reg=none" / RESULT
        result = json.loads(path.read_text())
        result["run"]["wall_time_s"] = wall
        path.write_text(json.dumps(result))
    interrupted = cells / "plw=0.25__model=tiny__dataset=toy__seed=0__reg=none"
    (interrupted / RESULT).unlink()
    write_status(interrupted, "running")
    status = study_status(make_plan(study))
    assert status.counts == {
        "done": 2,
        "running": 0,
        "failed": 1,
        "interrupted": 1,
        "changed": 0,
        "pending": 0,
    }
    assert status.mean_wall_s == 20.0 and status.eta_s == 20.0
    with study_lock(study.directory()):  # a live driver: the cell is really running
        assert study_status(make_plan(study)).counts["running"] == 1


def test_a_crashing_worker_never_kills_the_driver(make_study, fake_env):
    study = make_study()
    states = run_sweep(study, executor=LocalExecutor("sweep_support:crash"))
    crashed = study.directory() / "cells" / "plw=0.5__model=tiny__dataset=toy__seed=0__reg=none"
    assert states[crashed.name] == "failed" and sum(s == "done" for s in states.values()) == 2
    assert "killed by signal SIGKILL" in (crashed / ERROR).read_text()
    assert read_status(crashed)["state"] == "failed"


def test_cli_status_and_results_export(make_study, tmp_path):
    from plw.cli.main import app

    study = make_study()
    run(study, sweep_support.failing)
    cli = CliRunner()
    out = cli.invoke(app, ["status", str(study.directory())])
    assert out.exit_code == 0, out.output
    assert "2 done" in out.output and "1 failed" in out.output and "boom" in out.output
    out = cli.invoke(app, ["results", str(study.directory())])
    assert out.exit_code == 0 and out.output.splitlines()[0] == ",".join(RESULT_COLUMNS)
    for fmt in ("csv", "json", "parquet"):
        target = tmp_path / f"export.{fmt}"
        assert (
            cli.invoke(app, ["results", str(study.directory()), "--format", fmt, "-o", str(target)]).exit_code
            == 0
        )
    exported = pd.read_parquet(tmp_path / "export.parquet")
    pd.testing.assert_frame_equal(exported, table(study))
    assert len(json.loads((tmp_path / "export.json").read_text())) == 4
    runs = cli.invoke(app, ["results", str(study.directory()), "--table", "runs"])
    assert "failed" in runs.output
    layers = cli.invoke(app, ["results", str(study.directory()), "--table", "layers"])
    assert layers.output.splitlines()[0].endswith("layer,metric,value")


def test_launcher_trains_through_plw_train(tmp_path):
    """`resources.launcher` runs `<launcher> -m plw train config.yaml`; here the launcher is a stub."""
    import sys

    from plw.experiment.runner import launch_training
    from plw.training.config import TrainConfig

    stub = tmp_path / "launcher.py"
    stub.write_text(
        "import json, sys, yaml, pathlib\n"
        "assert sys.argv[1:4] == ['-m', 'plw', 'train'], sys.argv\n"
        "out = pathlib.Path(yaml.safe_load(open(sys.argv[4]))['output_dir'])\n"
        "out.mkdir(parents=True)\n"
        "(out / 'metrics.json').write_text(json.dumps({'train_runtime': 1.5}))\n"
    )
    (tmp_path / "records.json").write_text('[{"instruction": "a", "input": "", "output": "b"}]')
    config = TrainConfig(model="org/m", data={"path": str(tmp_path / "records.json")}, prompt_loss_weight=0.1,
                         output_dir=str(tmp_path / "train"))  # fmt: skip
    (tmp_path / "config.yaml").write_text(__import__("yaml").safe_dump(config.model_dump(mode="json")))
    assert launch_training([sys.executable, str(stub)], tmp_path, config) == {"train_runtime": 1.5}
    with pytest.raises(RuntimeError, match="exited with code"):
        launch_training([sys.executable, "-c", "raise SystemExit(3)"], tmp_path, config)
