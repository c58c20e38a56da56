"""`plw demo` summary lines: item-level verdict first, then the aggregate, then paired differences."""

from plw.cli.demo import _analysis_lines


def _row(plw, ref, diff, p):
    return {"benchmark": "pooled", "plw": plw, "reference": ref, "diff": diff, "p_value": p}


def test_item_level_verdict_first_then_aggregate_then_paired():
    analysis = {
        "pooled": {"verdict": "aggregate says no"},
        "item_level": {
            "fits": {"synthetic": {"verdict": "item level says no"}},
            "paired": {
                "rows": [
                    _row(0.1, 0.0, 0.012, 0.03),
                    _row(1.0, 0.0, -0.004, None),
                    _row(0.0, 1.0, 0.004, 0.5),
                ]
            },
        },
    }
    lines = _analysis_lines(analysis)
    assert lines[0] == "analysis (item level, primary): item level says no"
    assert lines[1] == "analysis (aggregate): aggregate says no"
    assert lines[2] == "paired per item, points vs PLW 0 (all benchmarks): PLW 0.1 +1.2 (p 0.03), PLW 1 -0.4"
    assert lines[3] == "paired per item, points vs PLW 1 (all benchmarks): PLW 0 +0.4 (p 0.5)"


def test_without_items_only_the_aggregate_and_an_item_error_is_said():
    assert _analysis_lines({"pooled": {"verdict": "v"}}) == ["analysis (aggregate): v"]
    lines = _analysis_lines({"pooled": {"verdict": "v"}, "item_level": {"error": "cell c: piqa differs"}})
    assert lines[-1] == "item-level analysis not run: cell c: piqa differs"
