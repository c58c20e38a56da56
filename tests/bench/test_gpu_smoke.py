"""bench/gpu.py --smoke: the GPU benchmark's code, run on CPU with stories260K so it cannot rot.

One subprocess runs every section at tiny sizes; the assertions read its JSON: every section is
there with finite numbers, the correctness, training and evaluation checks passed, and the
variants that need CUDA are skipped with that reason rather than silently missing.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from support import REPO, SHARED, needs

NEEDED = ("models/stories260K/model.safetensors", "instruct/alpaca_5000.json",
          "bench/piqa/validation.jsonl", "bench/ai2_arc/ARC-Easy/test.jsonl")  # fmt: skip

SECTIONS = ("correctness", "speed", "sft", "evaluation")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> dict:
    needs(*(SHARED / name for name in NEEDED))
    out = tmp_path_factory.mktemp("gpu") / "gpu.json"
    cmd = [sys.executable, str(REPO / "bench" / "gpu.py"), "--smoke", "--json", str(out)]
    cmd += ["--data-dir", str(SHARED)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    result["returncode"] = proc.returncode
    result["log"] = proc.stdout[-3000:] + proc.stderr[-3000:]
    return result


def numbers(rows: list[dict]) -> list[float]:
    return [v for r in rows for v in r.values() if isinstance(v, float)]


def test_every_section_has_finite_results(smoke):
    for name in SECTIONS:
        rows = smoke[name]
        assert rows, name
        assert not [r for r in rows if "error" in r], (name, smoke["log"])
        values = numbers(rows)
        assert values and all(math.isfinite(v) for v in values), name
    assert smoke["meta"]["smoke"] is True and smoke["meta"]["device"].startswith("CPU")


def test_checks_passed(smoke):
    assert smoke["passed"], smoke["log"]
    assert smoke["returncode"] == 0
    run = [r for r in smoke["correctness"] if "skipped" not in r]
    assert {r["variant"] for r in run} == {"chunked"}
    assert {r["dtype"] for r in run} == {"float32", "bfloat16"} and {r["plw"] for r in run} == {0.0, 0.1, 1.0}
    assert all(r["passed"] for r in run)
    assert {r["setup"] for r in smoke["sft"]} == {"lora", "full"}
    assert all(r["finite"] and r["falling"] for r in smoke["sft"])
    assert {r["task"] for r in smoke["evaluation"]} == {"arc_easy", "piqa"}
    assert all(r["identical"] for r in smoke["evaluation"])


def test_speed_covers_every_variant(smoke):
    timed = {r["variant"] for r in smoke["speed"] if "step_s" in r}
    assert {"hf", "trl", "reference", "chunked"} <= timed
    skipped = {r["variant"]: r["skipped"] for r in smoke["speed"] if "skipped" in r}
    assert set(skipped) == {"cce", "liger"} and all("CUDA" in why for why in skipped.values())
    for r in smoke["speed"]:
        if "step_s" in r:
            assert r["step_s"] > 0 and r["peak_mib"] > 0 and r["time_x_hf"] > 0 and r["peak_x_trl"] > 0
