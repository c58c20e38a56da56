"""`evaluate` and `plw eval`: outputs, resuming, errors, the CLI."""

import json

import pytest
import typer
from typer.testing import CliRunner

from plw.cli.eval import register
from plw.errors import PLWError
from plw.evaluation import DummyLM, EvalOptions, evaluate, expand_tasks
from plw.evaluation.options import OptionError


def test_outputs_and_summary(tiny_data, tmp_path):
    out = tmp_path / "out"
    result = evaluate(DummyLM(), "arc_easy,piqa", data_dir=tiny_data, output_dir=out, progress=False)
    summary = json.loads((out / "summary.json").read_text())
    assert summary == result and set(summary) == {"arc_easy", "piqa"}
    assert set(summary["piqa"]) == {"acc", "acc_stderr", "acc_norm", "acc_norm_stderr"}
    assert len((out / "piqa.jsonl").read_text().splitlines()) == 2
    record = json.loads((out / "piqa.metrics.json").read_text())
    assert record["n_items"] == 2 and record["settings"]["model"] == "dummy"
    assert not list(out.glob(".*tmp*"))  # atomic writes leave no temporary files


def test_rerun_skips_finished_tasks(tiny_data, tmp_path):
    out = tmp_path / "out"
    evaluate(DummyLM(), "arc_easy", data_dir=tiny_data, output_dir=out, progress=False)
    again = DummyLM()
    result = evaluate(again, "arc_easy,piqa", data_dir=tiny_data, output_dir=out, progress=False)
    assert all(
        context.startswith("Question: Open") or context.startswith("Question: Dry")
        for context, _ in again.calls
    )  # only piqa ran
    assert set(result) == {"arc_easy", "piqa"}
    third = DummyLM()
    evaluate(third, "arc_easy,piqa", data_dir=tiny_data, output_dir=out, progress=False)
    assert third.calls == []


def test_changed_settings_rerun(tiny_data, tmp_path):
    out = tmp_path / "out"
    evaluate(DummyLM(), "piqa", data_dir=tiny_data, output_dir=out, progress=False)
    again = DummyLM()
    evaluate(again, "piqa", data_dir=tiny_data, output_dir=out, limit=1, progress=False)
    assert len(again.calls) == 2  # one question, two choices
    assert json.loads((out / "piqa.metrics.json").read_text())["settings"]["limit"] == 1


def test_interrupted_task_is_redone(tiny_data, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "piqa.jsonl").write_text("")  # items written, metrics not: the task did not finish
    lm = DummyLM()
    evaluate(lm, "piqa", data_dir=tiny_data, output_dir=out, progress=False)
    assert lm.calls


def test_bad_data_fails_before_any_task_runs(tiny_data, tmp_path):
    (tiny_data / "piqa" / "validation.jsonl").write_text('{"goal": 1}\n')
    lm = DummyLM()
    with pytest.raises(PLWError, match="field 'goal'"):
        evaluate(lm, "arc_easy,piqa", data_dir=tiny_data, output_dir=tmp_path / "out", progress=False)
    assert lm.calls == [] and not (tmp_path / "out" / "arc_easy.jsonl").exists()


def test_task_names_and_errors(tiny_data):
    assert expand_tasks("wmt, piqa,piqa") == [
        "wmt14-fr-en",
        "wmt14-en-fr",
        "wmt16-de-en",
        "wmt16-en-de",
        "wmt16-ro-en",
        "wmt16-en-ro",
        "piqa",
    ]
    assert "alpaca_eval" in expand_tasks("paper")
    with pytest.raises(PLWError, match="unknown task 'hellaswag'"):
        evaluate(DummyLM(), "hellaswag", progress=False)
    with pytest.raises(PLWError, match="data directory not found"):
        evaluate(DummyLM(), "piqa", data_dir=tiny_data / "nope", progress=False)
    with pytest.raises(PLWError, match="cannot evaluate"):
        evaluate(42, "piqa", data_dir=tiny_data, progress=False)


def test_accepts_model_and_tokenizer_pair(stories, tiny_data):
    out = evaluate((stories.model, stories.tokenizer), "piqa", data_dir=tiny_data, progress=False)
    assert 0.0 <= out["piqa"]["acc"] <= 1.0


def test_an_options_object_scores_as_its_keywords(stories, tiny_data, tmp_path):
    options = EvalOptions(tasks=["piqa", "winogrande"], data_dir=tiny_data, limit=1, batch_size=2)
    by_object = evaluate(stories, options, tmp_path / "out", progress=False)
    by_keywords = evaluate(
        stories, "piqa,winogrande", data_dir=tiny_data, limit=1, batch_size=2, progress=False
    )
    assert json.dumps(by_object) == json.dumps(by_keywords)  # as text: one item's stderr is NaN
    assert set(by_object) == {"piqa", "winogrande"}
    # Keywords beside an options object replace its values (validated again, as any keywords).
    assert set(evaluate(stories, options, tasks="piqa", progress=False)) == {"piqa"}
    with pytest.raises(OptionError, match="^limit: must be at least 1, got 0$"):
        evaluate(stories, options, limit=0, progress=False)
    assert options.limit == 1


@pytest.fixture
def app():
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root():  # a callback keeps "eval" a subcommand, as in plw's app
        pass

    return app


def test_cli_eval_writes_results(app, stories_path, bench_dir, tmp_path):
    out = tmp_path / "cli"
    args = [
        "eval",
        "--model",
        str(stories_path),
        "--tasks",
        "piqa,winogrande",
        "--data-dir",
        str(bench_dir),
        "--limit",
        "3",
        "--batch-size",
        "4",
        "-o",
        str(out),
        "--no-progress",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "piqa" in result.output and "winogrande" in result.output
    assert set(json.loads((out / "summary.json").read_text())) == {"piqa", "winogrande"}
    rerun = CliRunner().invoke(app, args)  # resumes: nothing left to do
    assert rerun.exit_code == 0


def test_cli_errors_raise_plw_error(app, tmp_path):
    result = CliRunner().invoke(app, ["eval", "--model", "x", "--tasks", "nope", "-o", str(tmp_path)])
    assert isinstance(result.exception, PLWError)  # plw's main() prints it and exits 2
    assert "unknown task 'nope'" in str(result.exception)


@pytest.fixture
def no_model_load(monkeypatch):
    """Fails the test if a model is loaded: option errors must come first."""

    def load(*args, **kwargs):
        raise AssertionError("a model was loaded before the options were checked")

    monkeypatch.setattr("plw.evaluation.hf.HFModel.from_spec", load)
    monkeypatch.setattr("plw.evaluation.run.resolve_lm", load)


BAD_FLAGS = [
    (["--dtype", "float16"], "--dtype: unknown dtype 'float16' (allowed: float32, bfloat16)"),
    (["--template", "alpca"], "--template: unknown template 'alpca' (allowed: alpaca, chat, none)"),
    (["--batch-size", "0"], "--batch-size: must be at least 1, got 0"),
    (["--batch-size", "-2"], "--batch-size: must be at least 1, got -2"),
    (["--max-new-tokens", "0"], "--max-new-tokens: must be at least 1, got 0"),
    (["--limit", "0"], "--limit: must be at least 1, got 0"),
    (["--num-fewshot", "-1"], "--num-fewshot: must be at least 0, got -1"),
    (
        ["-t", "alpaca_eval"],
        "--judge: task alpaca_eval needs a judge (local, endpoint, local:MODEL or a YAML)",
    ),
]


@pytest.mark.parametrize(("flags", "expected"), BAD_FLAGS, ids=[f[0] for f, _ in BAD_FLAGS])
def test_cli_bad_option_is_one_line_exit_2(tmp_path, plw_cli, no_model_load, flags, expected):
    code, _, err = plw_cli("eval", "-m", "some-model", "-t", "piqa", "-o", tmp_path / "out", *flags)
    assert code == 2 and err.strip() == f"error: {expected}"
    assert not (tmp_path / "out" / "summary.json").exists()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"dtype": "float16"}, "dtype: unknown dtype 'float16'"),
        ({"template": "alpca"}, "template: unknown template 'alpca' (allowed: alpaca, chat, none)"),
        ({"batch_size": 0}, "batch_size: must be at least 1, got 0"),
        ({"max_new_tokens": 0}, "max_new_tokens: must be at least 1"),
        ({"tasks": "alpaca_eval"}, "judge: task alpaca_eval needs a judge"),
    ],
)
def test_evaluate_checks_options_before_loading(tiny_data, no_model_load, options, expected):
    with pytest.raises(OptionError) as err:  # the field's name, not a flag's
        evaluate("some-model", options.pop("tasks", "piqa"), data_dir=tiny_data, progress=False, **options)
    assert str(err.value).startswith(expected) and "--" not in str(err.value)
