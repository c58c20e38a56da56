"""`plw train` end to end on the real stories260K model, and its config errors."""

import json

import pytest
import yaml


@pytest.fixture
def config_file(tmp_path, stories_path, alpaca_path):
    def write(**overrides):
        config = {
            "model": str(stories_path),
            "data": {"path": str(alpaca_path), "limit": 64, "skip_bad_records": True},
            "eval_data": {"path": str(alpaca_path), "limit": 16, "skip_bad_records": True},
            "prompt_loss_weight": 0.1,
            "max_length": 128,
            "max_steps": 12,
            "batch_size": 8,
            "learning_rate": 3e-3,
            "warmup_ratio": 0.0,
            "lr_scheduler": "constant",
            "logging_steps": 4,
            "output_dir": str(tmp_path / "out"),
            **overrides,
        }
        path = tmp_path / "train.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    return write


@pytest.mark.slow
@pytest.mark.parametrize("plw", [0.0, 0.1, 1.0])
def test_real_finetune_lowers_completion_loss(plw_cli, config_file, tmp_path, plw):
    code, _, _ = plw_cli("train", str(config_file()), f"prompt_loss_weight={plw}")
    assert code in (0, None)
    out = tmp_path / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    history = json.loads((out / "log_history.json").read_text())
    logged = [e for e in history if "completion_loss" in e]
    assert logged[-1]["completion_loss"] < logged[0]["completion_loss"]
    assert metrics["prompt_loss_weight"] == plw
    assert metrics["eval_completion_loss"] > 0 and metrics["eval_prompt_loss"] > 0
    assert yaml.safe_load((out / "config.yaml").read_text())["prompt_loss_weight"] == plw
    assert (out / "model" / "model.safetensors").exists()


def test_lora_and_regularisers_run(plw_cli, config_file, tmp_path):
    path = config_file(
        max_steps=2,
        eval_data=None,
        lora={"r": 4, "alpha": 8, "dropout": 0.1},
        regularization={"weight_decay": 0.1, "dropout": 0.1},
        loss={"label_smoothing": 0.1, "minkowski_lambda": 1e-3},
    )
    code, _, _ = plw_cli("train", str(path), "packing=true", "precision=bf16")
    assert code in (0, None)
    assert (tmp_path / "out" / "model" / "adapter_config.json").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("prompt_loss_weight=1.5", "prompt_loss_weight: Value error, must be in [0, 1]"),
        ("learning_rate=-1", "learning_rate: Input should be greater than 0"),
        ("colour=blue", "colour: unknown key"),
        ("lora.rank=4", "lora.rank: unknown key"),
        ("data.path=missing.json", "data file not found: missing.json"),
        ("model=./no/such/model", "model './no/such/model' not found"),
        ("trainer_args={fp17: true}", "unknown TrainingArguments field(s): fp17"),
        ("normalizer=mean", "normalizer: Input should be"),
        ("seed=-1", "seed: Input should be greater than or equal to 0"),
        ("learning_rate=.inf", "learning_rate: Input should be a finite number"),
        ("learning_rate=nan", "learning_rate: Input should be a finite number"),
        ("regularization.weight_decay=.nan", "regularization.weight_decay: Input should be a finite number"),
        ("report_to=[wandb, tensorbord]", "report_to: Value error, unknown logger 'tensorbord'"),
        ("lr_scheduler=cosine_annealing", "lr_scheduler: Value error, unknown scheduler 'cosine_annealing'"),
        ("trainer_args={optim: adamw_nope}", "trainer_args: Value error, Transformers rejects"),
    ],
)
def test_bad_config_is_one_line_exit_2(monkeypatch, plw_cli, config_file, override, message):
    def no_model(*args, **kwargs):
        raise AssertionError("a config error must be found before any model loads")

    monkeypatch.setattr("plw.models.load_model", no_model)
    code, _, err = plw_cli("train", str(config_file()), override)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    err = " ".join(err.split())
    assert message in err and "Traceback" not in err
    assert str(config_file()) in err or "not found" in err


def test_an_old_and_a_new_loss_key_differing_are_one_line_exit_2(monkeypatch, plw_cli, config_file):
    def no_model(*args, **kwargs):
        raise AssertionError("a config error must be found before any model loads")

    monkeypatch.setattr("plw.models.load_model", no_model)
    code, _, err = plw_cli("train", str(config_file(normalizer="nonzero")), "loss.normalizer=completion")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "normalizer (the old key of loss.normalizer) and loss.normalizer are both given" in " ".join(
        err.split()
    )


def test_bad_yaml_names_line(plw_cli, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model: x\ndata: [unclosed\n")
    code, _, err = plw_cli("train", str(path))
    assert code == 2 and f"{path}:" in err.replace("\n", "") and "invalid YAML" in err


def test_bad_record_names_file_and_field(plw_cli, config_file, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "a", "output": 3}\n')
    code, _, err = plw_cli(
        "train", str(config_file(eval_data=None)), f"data.path={bad}", "data.skip_bad_records=false"
    )
    err = " ".join(err.split())
    assert code == 2 and "bad.jsonl:2: field 'output': expected a string, got int" in err


def test_auto_plw_resolves_from_generation_ratio(plw_cli, config_file, tmp_path):
    short = tmp_path / "short.jsonl"
    rows = [
        {
            "prompt": f"Once upon a time a {w} sat by the river and watched the boats go by. Who sat?",
            "completion": f" A {w}.",
        }
        for w in ("cat", "dog", "bird", "fish") * 4
    ]
    short.write_text("\n".join(json.dumps(r) for r in rows))
    path = config_file(max_steps=1, eval_data=None, data={"path": str(short)}, prompt_loss_weight="auto")
    code, _, _ = plw_cli("train", str(path))
    assert code in (0, None)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["prompt_loss_weight"] == pytest.approx(0.242, abs=1e-3)
    assert "Rg" in metrics["prompt_loss_weight_source"]
    assert yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())[
        "prompt_loss_weight"
    ] == pytest.approx(0.242)
