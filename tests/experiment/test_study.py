"""The study file: defaults, cell ids, grid edits, per-cell configs, and one-line errors naming the key."""

from __future__ import annotations

import importlib.util
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sweep_support import REPO, shared

from plw.errors import PLWError
from plw.experiment.cells import MAX_ID_LENGTH, Cell, expand
from plw.experiment.study import PAPER_PLW_LEVELS, load_study
from plw.experiment.validate import cell_config, check_study


def write(tmp_path: Path, data: dict, name: str = "study.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_defaults_are_the_papers_levels(make_study):
    study = make_study(factors={"model": ["tiny"], "dataset": ["toy"]})
    assert study.factors.plw == list(PAPER_PLW_LEVELS)
    assert study.factors.seed == [0] and study.factors.regularizer == ["none"]
    assert len(check_study(study)) == 10


def test_cell_ids_are_readable_stable_and_filesystem_safe():
    cell = Cell(0.1, "stories260K", "alpaca", 0, "none")
    assert cell.id == "plw=0.1__model=stories260K__dataset=alpaca__seed=0__reg=none"
    assert (
        Cell(1.0, "m", "d", 3, "weight_decay=0.1").id
        == "plw=1__model=m__dataset=d__seed=3__reg=weight_decay=0.1"
    )
    hub = Cell(0.0005, "meta-llama/Llama-2-7b-hf", "/data/alpaca_5000.json", 0, "none")
    assert re.fullmatch(
        r"plw=0.0005__model=meta-llama_Llama-2-7b-hf__dataset=alpaca_5000__seed=0__reg=none__[0-9a-f]{8}",
        hub.id,
    )
    assert hub.id == Cell(0.0005, "meta-llama/Llama-2-7b-hf", "/data/alpaca_5000.json", 0, "none").id
    other = Cell(0.0005, "meta-llama/Llama-2-7b-hf", "/elsewhere/alpaca_5000.json", 0, "none")
    assert other.id != hub.id  # same label, different data: the hash tells them apart
    long = Cell(0.5, "m" * 300, "d", 0, "none").id
    assert len(long) <= MAX_ID_LENGTH + 10 and re.fullmatch(r"[A-Za-z0-9._+=-]+", long)


def test_exclude_trims_and_include_adds_a_subgrid(make_study):
    study = make_study(
        factors={"plw": [0.0, 0.1, 1.0], "model": ["tiny"], "dataset": ["toy"], "seed": [0, 1]},
        exclude=[{"plw": 0.1, "seed": 1}],
        include=[{"plw": [0.0, 1.0], "regularizer": ["weight_decay=0.1", "minkowski=1e-4"], "seed": 0}],
    )
    cells = expand(study)
    assert len(cells) == 6 - 1 + 4
    assert Cell(0.1, "tiny", "toy", 1, "none") not in cells
    assert Cell(1.0, "tiny", "toy", 0, "minkowski=0.0001") in cells  # values are canonicalised


def test_cell_config_sets_factors_and_regularizer(make_study, data_file):
    study = make_study(
        factors={"plw": [0.25], "model": ["tiny"], "dataset": ["toy"], "seed": [7],
                 "regularizer": ["minkowski=0.001", "dropout=0.1", "weight_decay=0.01",
                                 "label_smoothing=0.2"]},
        datasets={"toy": {"path": str(data_file), "limit": 4,
                          "eval_data": {"path": str(data_file), "limit": 2}}},
        train={"max_steps": 3, "loss": {"minkowski_p": 1.5}, "lora": {"r": 4}},
    )  # fmt: skip
    configs = {c.regularizer: cell_config(study, c, Path("/out")) for c in expand(study)}
    mink = configs["minkowski=0.001"]
    assert (mink.prompt_loss_weight, mink.seed, mink.model, mink.max_steps) == (
        0.25,
        7,
        "example-org/tiny-model",
        3,
    )
    assert mink.loss.minkowski_lambda == 0.001 and mink.loss.minkowski_p == 1.5
    assert (
        mink.data.limit == 4 and mink.eval_data.limit == 2 and mink.output_dir == "/out" and mink.lora.r == 4
    )
    assert configs["dropout=0.1"].regularization.dropout == 0.1
    assert configs["weight_decay=0.01"].regularization.weight_decay == 0.01
    assert configs["label_smoothing=0.2"].loss.label_smoothing == 0.2


def test_loss_regularizers_set_the_loss_section_over_old_train_keys(make_study, caplog):
    # The old keys in train: are moved once, at load (one warning each); the factor then sets the new key.
    with caplog.at_level(logging.WARNING, logger="plw"):
        study = make_study(
            factors={"plw": [0.1], "model": ["tiny"], "dataset": ["toy"],
                     "regularizer": ["label_smoothing=0.1", "minkowski=1e-4"]},
            train={"normalizer": "nonzero",
                   "regularization": {"label_smoothing": 0.05, "minkowski_p": 1.5, "weight_decay": 0.01}},
        )  # fmt: skip
    moved = [r.getMessage().split(" (")[0] for r in caplog.records if "is now" in r.getMessage()]
    assert moved == [
        "plw: train.normalizer is now train.loss.normalizer",
        "plw: train.regularization.label_smoothing is now train.loss.label_smoothing",
        "plw: train.regularization.minkowski_p is now train.loss.minkowski_p",
    ]
    configs = {c.regularizer: cell_config(study, c, Path("/out")) for c in check_study(study)}
    smooth, mink = configs["label_smoothing=0.1"], configs["minkowski=0.0001"]
    assert smooth.loss.label_smoothing == 0.1 and smooth.loss.minkowski_lambda == 0.0
    assert mink.loss.minkowski_lambda == 1e-4 and mink.loss.label_smoothing == 0.05
    assert {c.loss.normalizer for c in configs.values()} == {"nonzero"}
    assert {c.loss.minkowski_p for c in configs.values()} == {1.5}
    assert {c.regularization.weight_decay for c in configs.values()} == {0.01}


BAD = [
    (
        {"factors": {"plw": [0.1], "model": ["tiny"], "dataset": ["toy"], "lr": [1]}},
        "factors.lr: unknown key",
    ),
    ({"factors": {"plw": [], "model": ["tiny"], "dataset": ["toy"]}}, "factors.plw:"),
    ({"factors": {"plw": [0.1, 2], "model": ["tiny"], "dataset": ["toy"]}}, "factors.plw.1:"),
    ({"factors": {"plw": [0.1], "model": ["tiny"], "dataset": ["toy"], "seed": ["x"]}}, "factors.seed.0:"),
    (
        {"factors": {"plw": [0.1], "model": ["tiny"], "dataset": ["toy"], "seed": [0, -1]}},
        "factors.seed.1: Input should be greater than or equal to 0",
    ),
    ({"factors": {"plw": [0.1, 0.1], "model": ["tiny"], "dataset": ["toy"]}}, "factors.plw: duplicate"),
    (
        {"factors": {"plw": [0.1], "model": ["tiny"], "dataset": ["toy"], "regularizer": ["l1=0.1"]}},
        "factors.regularizer.0:",
    ),
    ({"factors": {"plw": [0.1], "model": ["./no/such/model"], "dataset": ["toy"]}}, "factors.model: model"),
    ({"models": {"tiny": "/no/such/dir"}}, "models.tiny: model"),
    ({"datasets": {"toy": {"path": "/no/such/file.json"}}}, "datasets.toy.path: data file not found"),
    (
        {"factors": {"plw": [0.1], "model": ["tiny"], "dataset": ["missing.jsonl"]}},
        "factors.dataset: data file not found",
    ),
    ({"eval": {"tasks": ["no_such_task"]}}, "eval.tasks: unknown task"),
    ({"eval": {"template": "alpca"}}, "eval.template: unknown template 'alpca' (allowed: alpaca, chat, none"),
    ({"train": {"seed": 3}}, "train: 'seed' is set by factors.seed"),
    ({"train": {"lora": {"r": 0}}}, "train.lora.r:"),
    ({"train": {"learning_rate": "fast"}}, "train.learning_rate:"),
    ({"include": [{"plw": 0.0}]}, "include.0: duplicate cell"),
    ({"exclude": [{"lr": 1}]}, "exclude: entry 0: unknown factor 'lr'"),
    (
        {"factors": {"plw": [0.1], "model": ["tiny"], "dataset": ["toy"], "regularizer": ["dropout=1.5"]}},
        "factors.regularizer: dropout=1.5: Input should be less than 1",
    ),
    (
        {
            "factors": {
                "plw": [0.1],
                "model": ["tiny"],
                "dataset": ["toy"],
                "regularizer": ["label_smoothing=1"],
            }
        },
        "factors.regularizer: label_smoothing=1: Input should be less than 1",
    ),
    (
        {"train": {"chunk_size": 8, "loss": {"chunk_size": 16}}},
        "train: train.chunk_size (the old key of train.loss.chunk_size) and train.loss.chunk_size are both "
        "given, with different values (8 and 16); give only train.loss.chunk_size",
    ),
]


@pytest.mark.parametrize(("sections", "expected"), BAD, ids=[e for _, e in BAD])
def test_bad_studies_fail_with_one_line_naming_the_key(tmp_path, make_study, data_file, sections, expected):
    base = make_study().model_dump()
    if "eval" in sections:
        pytest.importorskip("plw.evaluation.tasks", reason="evaluation module not available")
    path = write(tmp_path, {**base, **sections})
    with pytest.raises(PLWError) as err:
        check_study(load_study(path), str(path))
    message = str(err.value)
    assert "\n" not in message and expected in message and str(path) in message


def test_overrides_and_name_default(tmp_path, make_study):
    data = make_study().model_dump()
    del data["name"]
    path = write(tmp_path, data, "my-study.yaml")
    study = load_study(path, ["factors.plw=[0, 1]", "train.max_steps=5"])
    assert study.name == "my-study" and study.factors.plw == [0.0, 1.0] and study.train["max_steps"] == 5


def test_paper_study_validates_offline():
    study = load_study(REPO / "configs" / "studies" / "paper.yaml")
    cells = check_study(study)
    assert len(cells) == 60 and sorted(study.factors.plw) == list(PAPER_PLW_LEVELS)
    config = cell_config(study, cells[0], Path("/out"))
    assert config.model == "meta-llama/Llama-2-7b-hf" and config.data.path == "tatsu-lab/alpaca"
    assert (config.epochs, config.learning_rate, config.lr_scheduler, config.warmup_ratio) == (
        3,
        2e-5,
        "cosine",
        0.03,
    )
    assert config.batch_size * config.gradient_accumulation_steps * 4 == 128 and config.max_length == 512
    assert config.precision == "bf16" and config.trainer_args["fsdp"] == "full_shard auto_wrap"
    assert {c.dataset for c in cells} == {"alpaca", "alpaca-cleaned", "alpaca-short"}
    assert {cell_config(study, c, Path("/o")).model for c in cells} == {
        "meta-llama/Llama-2-7b-hf",
        "huggyllama/llama-7b",
    }


def test_tiny_study_validates():
    shared("models/stories260K/config.json")
    overrides = [
        f"models.stories260K={shared('models/stories260K')}",
        f"datasets.alpaca.path={shared('instruct/alpaca_5000.json')}",
        f"eval.data_dir={shared('bench')}",
    ]
    if importlib.util.find_spec("plw.evaluation.tasks") is None:
        overrides.append("eval.tasks=[]")
    study = load_study(REPO / "configs" / "studies" / "tiny.yaml", overrides)
    assert [c.id for c in check_study(study)][
        1
    ] == "plw=0.1__model=stories260K__dataset=alpaca__seed=0__reg=none"


def test_cli_exits_2_with_one_line(tmp_path, make_study):
    path = write(
        tmp_path, {**make_study().model_dump(), "factors": {"plw": [], "model": ["tiny"], "dataset": ["toy"]}}
    )
    proc = subprocess.run(
        [sys.executable, "-m", "plw", "sweep", str(path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "factors.plw" in lines[0]


def test_dry_run_estimates_and_writes_nothing(tmp_path):
    from typer.testing import CliRunner

    from plw.cli.main import app

    shared("models/stories260K/config.json")
    out = tmp_path / "study"
    args = ["sweep", str(REPO / "configs" / "studies" / "tiny.yaml"), f"output_dir={out}", "eval.tasks=[]",
            f"models.stories260K={shared('models/stories260K')}",
            f"datasets.alpaca.path={shared('instruct/alpaca_5000.json')}", f"eval.data_dir={shared('bench')}",
            "--dry-run"]  # fmt: skip
    result = CliRunner().invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "plw=0.1__model=stories260K__dataset=alpaca__seed=0__reg=none" in result.output
    assert (
        "260k" in result.output and "nothing was run" in result.output
    )  # parameters counted from the config
    assert not out.exists()


def test_ray_executor_without_ray_is_a_one_line_error(monkeypatch):
    from plw.experiment.executor_ray import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(PLWError, match="pip install 'plw\\[ray\\]'"):
        import_ray()
