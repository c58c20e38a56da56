"""Extra factors (`factors.train.<path>`): parsing, cell ids, per-cell configs, one-line errors naming the
study key, include / exclude, resume, the results columns and the dry run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import sweep_support
import yaml
from sweep_support import REPO, shared

from plw.analysis.results import RESULT_COLUMNS
from plw.errors import PLWError
from plw.experiment.cells import Cell, expand
from plw.experiment.driver import run_sweep
from plw.experiment.executor_local import LocalExecutor
from plw.experiment.store import ResultStore
from plw.experiment.study import load_study
from plw.experiment.validate import cell_config, check_study


def factors(**extra) -> dict:
    return {"plw": [0.0, 1.0], "model": ["tiny"], "dataset": ["toy"], **extra}


def test_both_spellings_parse_alike_and_exponent_strings_are_numbers(make_study):
    flat = make_study(factors=factors(**{"train.learning_rate": ["1e-5", 2.0e-5], "train.lora.r": [8, 64]}))
    nested = make_study(
        factors={**factors(), "train": {"learning_rate": [1e-5, 2e-5], "lora": {"r": [8, 64]}}}
    )
    assert flat.factors.train == nested.factors.train == {"learning_rate": [1e-5, 2e-5], "lora.r": [8, 64]}
    assert [c.id for c in expand(flat)] == [c.id for c in expand(nested)]


def test_cell_ids_extend_the_old_ones_and_stay_filesystem_safe(make_study):
    study = make_study(factors=factors(**{"train.learning_rate": [1e-5], "train.lora": [None, {"r": 8}]}))
    ids = [c.id for c in expand(study)]
    assert ids[0] == "plw=0__model=tiny__dataset=toy__seed=0__reg=none__learning_rate=1e-05__lora=null"
    # a mapping value is labelled readably, and the exact values are hashed so no two cells share an id
    assert re.fullmatch(r"plw=0__.*__learning_rate=1e-05__lora=r-8__[0-9a-f]{8}", ids[1])
    assert len(set(ids)) == 4 and all(re.fullmatch(r"[A-Za-z0-9._+=-]+", i) for i in ids)
    # no extra factors: exactly the ids studies always had, so old study directories resume
    assert Cell(0.1, "tiny", "toy", 0, "none").id == "plw=0.1__model=tiny__dataset=toy__seed=0__reg=none"


def test_each_cell_config_gets_its_levels_on_top_of_train(make_study):
    study = make_study(
        factors=factors(**{"train.lora": [None, {"r": 8}], "train.batch_size": [2, 4]}),
        train={"max_steps": 1, "lora": {"r": 4, "alpha": 32}, "batch_size": 16},
    )
    configs = [cell_config(study, c, Path("/out")) for c in check_study(study)]
    assert {(c.lora.r if c.lora else None, c.batch_size) for c in configs} == {
        (None, 2), (None, 4), (8, 2), (8, 4)
    }  # fmt: skip
    nested = make_study(factors=factors(**{"train.lora.r": [8, 64]}), train={"lora": {"alpha": 32}})
    configs = [cell_config(nested, x, Path("/o")) for x in expand(nested)]
    assert {(c.lora.r, c.lora.alpha) for c in configs} == {
        (8, 32), (64, 32)
    }  # fmt: skip


def test_an_old_loss_key_as_a_factor_sets_the_new_key_and_keeps_its_cell_ids(make_study):
    study = make_study(factors=factors(**{"train.chunk_size": [8, 16]}))
    cells = check_study(study)
    assert cells[0].id == "plw=0__model=tiny__dataset=toy__seed=0__reg=none__chunk_size=8"
    assert {cell_config(study, c, Path("/o")).loss.chunk_size for c in cells} == {8, 16}


BAD = [
    ({"train.learnin_rate": [1e-5]}, "factors.train.learnin_rate: unknown training setting 'learnin_rate'"),
    ({"train.lora.rank": [8]}, "factors.train.lora.rank: unknown training setting 'rank'"),
    (
        {"train.learning_rate": [1e-5, "fast"]},
        "factors.train.learning_rate[1]: Input should be a valid number",
    ),
    ({"train.learning_rate": [1e-5, -1.0]}, "factors.train.learning_rate[1]: Input should be greater than 0"),
    ({"train.lora": [None, {"r": 0}]}, "factors.train.lora[1]: Input should be greater than or equal to 1"),
    ({"train.prompt_loss_weight": [0.5]}, "factors.train.prompt_loss_weight: collides with factors.plw"),
    ({"train.seed": [1]}, "factors.train.seed: collides with factors.seed"),
    ({"train.data.limit": [4]}, "factors.train.data.limit: collides with factors.dataset"),
    ({"train.regularization.weight_decay": [0.1]}, "collides with factors.regularizer"),
    (
        {"train.loss.label_smoothing": [0.1]},
        "collides with factors.regularizer, which sets loss.label_smoothing",
    ),
    ({"train.loss.chunk": [8]}, "factors.train.loss.chunk: unknown training setting 'chunk'"),
    ({"train.learning_rate": 0.1}, "factors: train.learning_rate: expected a list of values"),
    ({"train.learning_rate": []}, "factors.train: learning_rate: must not be empty"),
    ({"train.learning_rate": [0.1, 0.1]}, "factors.train: learning_rate: duplicate value 0.1"),
    ({"train.lora": [None], "train.lora.r": [8]}, "factors.train: lora and lora.r overlap"),
]


@pytest.mark.parametrize(("extra", "expected"), BAD, ids=[e for _, e in BAD])
def test_bad_extra_factors_are_one_line_naming_the_key(tmp_path, make_study, extra, expected):
    data = make_study().model_dump()
    data["factors"] = factors(**extra)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PLWError) as err:
        check_study(load_study(path), str(path))
    message = str(err.value)
    assert "\n" not in message and expected in message and str(path) in message


def test_include_and_exclude_name_extra_factors(make_study):
    study = make_study(
        factors=factors(**{"train.learning_rate": [1e-5, 2e-5]}),
        exclude=[{"plw": 1.0, "train.learning_rate": 2e-5}],
        include=[{"plw": 0.5, "train": {"learning_rate": "5e-5"}}],
    )
    cells = {(c.plw, c.extra_values()["learning_rate"]) for c in expand(study)}
    assert cells == {(0.0, 1e-5), (0.0, 2e-5), (1.0, 1e-5), (0.5, 5e-5)}
    bad = make_study(factors=factors(), include=[{"train.learning_rate": 1e-5}])
    with pytest.raises(PLWError, match=r"include\.0: train\.learning_rate is not a factor of the study"):
        expand(bad)
    with pytest.raises(PLWError, match=r"include: train\.learning_rate: -1: Input should be greater than 0"):
        check_study(make_study(factors=factors(**{"train.learning_rate": [1e-5]}),
                               include=[{"plw": 0.5, "train.learning_rate": -1}]))  # fmt: skip


def test_override_replaces_the_files_list(tmp_path, make_study):
    data = make_study(factors=factors(**{"train.learning_rate": [1e-5, 2e-5]})).model_dump()
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    study = load_study(path, ["factors.train.learning_rate=[3.0e-5]"])
    assert study.factors.train == {"learning_rate": [3e-5]}


def run(study):
    return run_sweep(study, executor=LocalExecutor(sweep_support.ok, isolate=False))


def test_results_have_one_column_per_extra_factor_and_resume_from_study_yaml(make_study):
    study = make_study(
        factors=factors(**{"train.learning_rate": [1e-5, 2e-5], "train.lora": [None, {"r": 8}]})
    )
    assert set(run(study).values()) == {"done"}
    store = ResultStore(study.directory() / "results.sqlite")
    results = store.results()
    columns = list(RESULT_COLUMNS)
    assert list(results.columns) == [*columns[:7], "train.learning_rate", "train.lora", *columns[7:]]
    assert sorted(results["train.learning_rate"].unique()) == [1e-5, 2e-5]
    assert set(results["train.lora"]) == {"null", '{"r":8}'}
    assert {"train.learning_rate", "train.lora"} <= set(store.layers().columns)
    csv = pd.read_csv(study.directory() / "results.csv", keep_default_na=False)
    assert list(csv.columns) == list(results.columns) and len(csv) == len(results) == 16
    # the saved study.yaml resumes to the same cells: nothing reruns
    from plw.experiment.status import load_target

    saved, _ = load_target(study.directory())
    assert [c.id for c in expand(saved)] == [c.id for c in expand(study)]
    sweep_support.CALLS.clear()
    assert set(run(saved).values()) == {"done"} and sweep_support.CALLS == []


def test_an_old_study_directory_resumes_unchanged(make_study):
    """A store and cells written before extra factors existed (no cell_factors table) open as they were."""
    import sqlite3

    study = make_study()
    run(study)
    db = study.directory() / "results.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("DROP TABLE cell_factors")  # as written by older plw
    before = sorted(p.name for p in (study.directory() / "cells").iterdir())
    sweep_support.CALLS.clear()
    assert set(run(study).values()) == {"done"} and sweep_support.CALLS == []
    assert sorted(p.name for p in (study.directory() / "cells").iterdir()) == before
    assert list(ResultStore(db).results().columns) == list(RESULT_COLUMNS)
    spec = json.loads((study.directory() / "cells" / before[0] / "cell.json").read_text())
    assert set(spec["factors"]) == {"plw", "model", "dataset", "seed", "regularizer"}


def test_dry_run_lists_extra_factor_cells_with_estimates(tmp_path):
    from typer.testing import CliRunner

    from plw.cli.main import app

    shared("models/stories260K/config.json")
    args = ["sweep", str(REPO / "configs" / "studies" / "plw-x-lr.yaml"), f"output_dir={tmp_path / 's'}",
            f"models.stories260K={shared('models/stories260K')}",
            f"datasets.alpaca.path={shared('instruct/alpaca_5000.json')}", "eval.tasks=[]",
            f"eval.data_dir={shared('bench')}",
            "factors.train.batch_size=[2, 4]", "--dry-run"]  # fmt: skip
    result = CliRunner().invoke(app, args, terminal_width=240)
    assert result.exit_code == 0, result.output
    assert "__batch_size=2__learning_rate=" in result.output and "nothing was run" in result.output
    study = load_study(REPO / "configs" / "studies" / "plw-x-lr.yaml", ["factors.train.batch_size=[2, 4]"])
    assert f"{len(expand(study))} cells" in result.output
    assert not (tmp_path / "s").exists()


def test_cli_exit_2_one_line_for_an_unknown_path(tmp_path, make_study, plw_cli):
    data = make_study().model_dump()
    data["factors"] = factors(**{"train.lr": [1e-5]})
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    code, _, err = plw_cli("sweep", path, "--dry-run")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert "factors.train.lr: unknown training setting 'lr'" in lines[0]


def test_completion_weight_is_a_factor_like_any_setting(make_study):
    from plw.training.config import TrainConfig

    if "completion_loss_weight" not in TrainConfig.model_fields:
        pytest.skip("TrainConfig has no completion_loss_weight yet")
    study = make_study(factors=factors(**{"train.completion_loss_weight": [0.5, 1.0]}))
    cells = check_study(study)
    assert cells[0].id.endswith("__completion_loss_weight=0.5")
    assert {cell_config(study, c, Path("/o")).completion_loss_weight for c in cells} == {0.5, 1.0}
    bad = make_study(factors=factors(**{"train.completion_loss_weight": [0.5, 1.5]}))
    with pytest.raises(PLWError, match=r"factors\.train\.completion_loss_weight\[1\]: "):
        check_study(bad)


@pytest.mark.slow
def test_real_cells_train_each_level(tmp_path):
    """stories260K cells of 2 steps: full fine-tuning and LoRA as levels of one factor, end to end."""
    study = load_study(REPO / "configs" / "studies" / "plw-x-lr.yaml", [
        f"models.stories260K={shared('models/stories260K')}",
        f"datasets.alpaca.path={shared('instruct/alpaca_5000.json')}",
        f"eval.data_dir={shared('bench')}", "eval.tasks=[]", "eval.memorization_samples=0",
        "factors.plw=[1.0]", "factors.train.learning_rate=[1.0e-3]", "factors.train.lora=[null, {r: 2}]",
        "train.max_steps=2",
        f"output_dir={tmp_path / 'study'}",
    ])  # fmt: skip
    assert len(expand(study)) == 2
    assert set(run_sweep(study, executor="local").values()) == {"done"}
    results = ResultStore(tmp_path / "study" / "results.sqlite").results()
    assert set(results["train.lora"]) == {"null", '{"r":2}'}
    distance = results[results.metric == "weight_rel_distance"].set_index("train.lora")["value"]
    assert distance["null"] > 0 and distance['{"r":2}'] > 0 and distance["null"] != distance['{"r":2}']
    lora_cell = next(c for c in expand(study) if c.extra_values()["lora"])
    saved = yaml.safe_load((tmp_path / "study" / "cells" / lora_cell.id / "config.yaml").read_text())
    assert saved["lora"]["r"] == 2 and saved["prompt_loss_weight"] == 1.0
