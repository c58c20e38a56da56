"""load_results: directories and files, defaults, and one-line errors for bad input."""

from __future__ import annotations

import pandas as pd
import pytest

from plw.analysis.results import load_results
from plw.analysis.scores import select_scores
from plw.analysis.summary import analyze_study
from plw.errors import PLWError


def test_directory_with_csv_parquet_or_json(sim, write_table):
    df = sim(n_benchmarks=3, plw_levels=(0.0, 0.1, 1.0))
    for name in ("results.csv", "results.parquet"):
        study = write_table(df, name)
        got = load_results(study)
        assert got.attrs["source"].endswith(name)
        assert len(got) == len(df)
        assert got["plw"].dtype == float and set(got["plw"]) == {0.0, 0.1, 1.0}
        (study / name).unlink()
    study = write_table(df, "table.json")
    got = load_results(study / "table.json")
    assert len(got) == len(df) and set(got["task"]) == set(df["task"])


def test_csv_is_preferred_over_parquet_in_a_directory(sim, write_table):
    df = sim(n_benchmarks=2, plw_levels=(0.0, 1.0))
    write_table(df.head(4), "results.parquet")
    study = write_table(df, "results.csv")
    assert len(load_results(study)) == len(df)


def test_minimal_hand_made_table_gets_defaults(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text(
        "plw,task,metric,value\n0,arc_easy,acc_norm,0.5\n0.1,arc_easy,acc_norm,\n1,arc_easy,acc_norm,0.6\n"
    )
    df = load_results(path)
    assert list(df["dataset"].unique()) == ["default"] and list(df["regularizer"].unique()) == ["none"]
    assert df["value"].isna().sum() == 1  # an empty value is missing, not an error
    assert df["cell"].iloc[0] == "plw=0,model=default,dataset=default,seed=0,reg=none"


def test_missing_path_names_it(tmp_path):
    with pytest.raises(PLWError, match="nope.csv: no such file"):
        load_results(tmp_path / "nope.csv")


def test_directory_without_table_lists_expected_files(tmp_path):
    (tmp_path / "results.sqlite").write_text("")
    with pytest.raises(PLWError, match=r"results\.csv.*results\.sqlite found"):
        load_results(tmp_path)


def test_missing_column_names_file_and_column(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("plw,task,value\n0,arc_easy,0.5\n")
    with pytest.raises(PLWError) as err:
        load_results(path)
    assert "r.csv" in str(err.value) and "'metric'" in str(err.value) and "\n" not in str(err.value)


def test_non_numeric_plw_names_file_column_and_row(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("plw,task,metric,value\n0,arc_easy,acc,0.5\nhalf,arc_easy,acc,0.6\n")
    with pytest.raises(PLWError, match=r"r\.csv: column 'plw' has a non-numeric value 'half' on row 2"):
        load_results(path)


def test_plw_outside_unit_interval(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("plw,task,metric,value\n1.5,arc_easy,acc,0.5\n")
    with pytest.raises(PLWError, match=r"column 'plw' has 1.5 on row 1, outside \[0, 1\]"):
        load_results(path)


def test_scored_value_outside_unit_interval_names_file_and_column(sim, write_table):
    df = sim(n_benchmarks=2, plw_levels=(0.0, 0.1, 1.0))
    df.loc[df["task"] == "arc_easy", "value"] = 1.7
    study = write_table(df)
    with pytest.raises(PLWError, match=r"results\.csv: column 'value' has 1.7 for task 'arc_easy'"):
        analyze_study(study, bootstrap=0)


def test_bleu_is_scaled_and_checked_on_its_own_scale():
    df = pd.DataFrame(
        {"plw": [0.0, 1.0], "task": ["wmt16-de-en"] * 2, "metric": ["bleu"] * 2, "value": [35.0, 150.0]}
    )
    from plw.analysis.results import normalize_results

    with pytest.raises(PLWError, match=r"outside \[0, 100\]"):
        select_scores(normalize_results(df, "t.csv"))
    df.loc[1, "value"] = 40.0
    scores, _ = select_scores(normalize_results(df, "t.csv"))
    assert scores["score"].tolist() == pytest.approx([0.35, 0.40])


def test_unsupported_format(tmp_path):
    path = tmp_path / "r.xlsx"
    path.write_text("x")
    with pytest.raises(PLWError, match="unsupported results format"):
        load_results(path)


def test_invalid_json(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("{not json")
    with pytest.raises(PLWError, match="r.json: not valid JSON"):
        load_results(path)
