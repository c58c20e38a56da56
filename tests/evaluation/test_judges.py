"""Judges and the AlpacaEval task: rigged verdicts, a loopback OpenAI-compatible server, both orders."""

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from judge_support import chat_endpoint

from plw.errors import PLWError
from plw.evaluation import DummyLM, evaluate, load_judge
from plw.evaluation.judges.base import HERE, JudgeConfig, render
from plw.evaluation.judges.endpoint import parse_verdict
from plw.evaluation.tasks.alpaca_eval import combine

ROWS = [
    {"instruction": "Say hi", "output": "hello", "generator": "text_davinci_003", "dataset": "x"},
    {"instruction": "Count to 3", "output": "1 2 3", "generator": "text_davinci_003", "dataset": "x"},
]


@pytest.fixture
def alpaca_dir(tmp_path):
    path = tmp_path / "alpaca_eval" / "text_davinci_003_model_outputs.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(ROWS))
    return tmp_path


def verdict_logprobs(context: str, verdict: str) -> float:
    """A rigged judge: prefers whichever output contains "GOOD", wherever it is shown."""
    a = context.split("## Output (a):")[1].split("## Output (b):")[0]
    good = "(a)" if "GOOD" in a else "(b)"
    return -0.1 if verdict.endswith(good) else -3.0


def test_render_leaves_braces_in_outputs():
    assert render("{instruction}|{output_a}|{output_b}", "i", "{output_b}", "x{y}") == "i|{output_b}|x{y}"


def test_shipped_configs_load():
    config = JudgeConfig.from_file(HERE / "local.yaml")
    assert config.type == "local" and "{output_a}" in config.prompt
    assert JudgeConfig.from_file(HERE / "endpoint.yaml").api_key_env == "OPENAI_API_KEY"


def test_local_judge_probabilities_from_verdict_logprobs():
    judge = load_judge("local", lm=DummyLM(verdict_logprobs))
    p_good_first, p_good_second = judge.prefer_a([("q", "GOOD", "bad"), ("q", "bad", "GOOD")])
    assert p_good_first == pytest.approx(1 / (1 + math.exp(-2.9)))
    assert p_good_second == pytest.approx(1 - p_good_first)


def test_combine_cancels_position_bias():
    # A judge that always says (a) with 0.8: the model wins shown first, loses shown second -> 0.5.
    assert combine(0.8, 0.8) == pytest.approx(0.5)
    assert combine(1.0, 0.0) == 1.0 and combine(None, 0.3) is None


def test_alpaca_eval_with_rigged_local_judge(alpaca_dir):
    from plw.data.formats import ALPACA_PROMPT_NO_INPUT

    # The model's answer to "Say hi" is GOOD, to "Count to 3" worse than the reference.
    answers = {
        ALPACA_PROMPT_NO_INPUT.format(instruction="Say hi"): "GOOD hi",
        ALPACA_PROMPT_NO_INPUT.format(instruction="Count to 3"): "no",
    }
    rows2 = dict(ROWS[1], output="GOOD 1 2 3")
    (alpaca_dir / "alpaca_eval" / "text_davinci_003_model_outputs.json").write_text(
        json.dumps([ROWS[0], rows2])
    )
    judge = load_judge("local", lm=DummyLM(verdict_logprobs))
    out = evaluate(
        DummyLM(responses=answers), "alpaca_eval", data_dir=alpaca_dir, judge=judge, progress=False
    )
    metrics = out["alpaca_eval"]
    assert metrics["win_rate"] == 0.5 and metrics["win_rate_stderr"] > 0
    assert metrics["avg_length"] == (7 + 2) / 2 and metrics["ref_avg_length"] == (5 + 10) / 2
    assert metrics["judge_unreadable"] == 0.0


def test_alpaca_eval_needs_a_judge(alpaca_dir):
    with pytest.raises(PLWError, match="needs a judge"):
        evaluate(DummyLM(), "alpaca_eval", data_dir=alpaca_dir, progress=False)


def test_alpaca_eval_on_shared_file_with_real_models(stories, bench_dir, tmp_path):
    # stories260K answers and judges: a plumbing check of generation, judging and files, not a verdict.
    judge = load_judge("local", lm=stories)
    out = evaluate(
        stories,
        "alpaca_eval",
        data_dir=bench_dir,
        limit=2,
        judge=judge,
        max_new_tokens=16,
        output_dir=tmp_path,
        progress=False,
    )["alpaca_eval"]
    assert 0.0 <= out["win_rate"] <= 1.0 and 0.0 < out["win_rate_soft"] < 1.0
    items = [json.loads(x) for x in (tmp_path / "alpaca_eval.jsonl").read_text().splitlines()]
    assert len(items) == 2 and all(0.0 < x["p_model_first"] < 1.0 for x in items)


def _good_reply(body: dict) -> str:
    """Answers with the output that contains GOOD; UNREADABLE gets an answer naming neither."""
    prompt = body["messages"][0]["content"]
    if "UNREADABLE" in prompt:
        return "I cannot decide."
    a = prompt.split("## Output (a):")[1].split("## Output (b):")[0]
    return "Output (a)" if "GOOD" in a else "Sure. Output (b) is better than Output (a)."


SEEN: list = []
"""Requests the `chat_server` of the running test received: (path, Authorization, body)."""


@pytest.fixture
def chat_server():
    global SEEN
    with chat_endpoint(_good_reply) as (url, SEEN):
        yield url


def endpoint_config(tmp_path, base_url):
    (tmp_path / "judge.txt").write_text((HERE / "pairwise.txt").read_text())
    path = tmp_path / "judge.yaml"
    path.write_text(
        f"type: endpoint\nbase_url: {base_url}\nmodel: toy-judge\napi_key_env: PLW_TEST_KEY\n"
        "prompt: judge.txt\nmax_retries: 0\ntimeout: 10\n"
    )
    return path


def test_endpoint_judge_against_loopback_server(tmp_path, chat_server, monkeypatch, alpaca_dir):
    monkeypatch.setenv("PLW_TEST_KEY", "sk-test")
    judge = load_judge(endpoint_config(tmp_path, chat_server))
    assert judge.prefer_a([("q", "GOOD", "bad"), ("q", "bad", "GOOD"), ("q", "UNREADABLE", "x")]) == [
        1.0,
        0.0,
        None,
    ]
    path, auth, body = SEEN[0]
    assert path == "/v1/chat/completions" and auth == "Bearer sk-test"
    assert body["model"] == "toy-judge" and body["temperature"] == 0
    # End to end: the model's outputs all contain GOOD, so it wins every comparison in both orders.
    out = evaluate(
        DummyLM(responses=lambda prompt: "GOOD answer"),
        "alpaca_eval",
        data_dir=alpaca_dir,
        judge=str(tmp_path / "judge.yaml"),
        output_dir=tmp_path / "out",
        progress=False,
    )
    assert out["alpaca_eval"]["win_rate"] == 1.0
    # Every preference is 1: nothing for the length regression to adjust.
    assert out["alpaca_eval"]["length_controlled_win_rate"] == 1.0


def test_endpoint_errors_are_one_line(tmp_path, chat_server):
    dead = endpoint_config(tmp_path, "http://127.0.0.1:9/v1")  # port 9 (discard): connection refused
    with pytest.raises(PLWError, match="failed after 1 tries"):
        load_judge(dead).prefer_a([("q", "a", "b")])
    with pytest.raises(PLWError, match="judge config not found"):
        load_judge(tmp_path / "missing.yaml")


def test_parse_verdict_takes_first_mention():
    verdicts = ("Output (a)", "Output (b)")
    assert parse_verdict("output (b), not Output (a)", verdicts) == 0.0
    assert parse_verdict("Output (a)", verdicts) == 1.0
    assert parse_verdict("neither", verdicts) is None


VERDICT = json.dumps({"choices": [{"message": {"role": "assistant", "content": "Output (a)"}}]}).encode()


@pytest.fixture
def loopback():
    """`start(answer)` -> (url, seen): a server on 127.0.0.1 (its own port, so its own origin).

    `answer(path)` returns (status, headers, body); every request is recorded in `seen` as
    (method, path, Authorization header, body).
    """
    servers = []

    def start(answer):
        seen = []

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen.append((self.command, self.path, self.headers.get("Authorization"), body))
                status, headers, data = answer(self.path)
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(data))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer  # noqa: N815 - http.server API

            def log_message(self, *args):
                pass

        server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", seen

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_endpoint_refuses_cross_origin_redirect(tmp_path, loopback, monkeypatch, code):
    monkeypatch.setenv("PLW_TEST_KEY", "sk-secret")
    other, other_seen = loopback(lambda path: (200, {"Content-Type": "application/json"}, VERDICT))
    first, first_seen = loopback(lambda path: (code, {"Location": f"{other}{path}"}, b""))
    judge = load_judge(endpoint_config(tmp_path, f"{first}/v1"))
    with pytest.raises(PLWError, match=r"refused a redirect \(HTTP \d+\) to another origin") as err:
        judge.prefer_a([("q", "a", "b")])
    assert "\n" not in str(err.value) and "sk-secret" not in str(err.value)
    assert first_seen[0][2] == "Bearer sk-secret"  # the configured endpoint gets the key
    assert other_seen == []  # the other origin is never contacted, so never sees the key


def test_endpoint_follows_same_origin_redirect_with_body(tmp_path, loopback, monkeypatch):
    monkeypatch.setenv("PLW_TEST_KEY", "sk-secret")

    def answer(path):
        if path.startswith("/old"):
            return 307, {"Location": path.replace("/old", "/v1")}, b""
        return 200, {"Content-Type": "application/json"}, VERDICT

    url, seen = loopback(answer)
    judge = load_judge(endpoint_config(tmp_path, f"{url}/old"))
    assert judge.prefer_a([("q", "a", "b")]) == [1.0]
    (_, _, _, first_body), (method, path, auth, body) = seen
    assert (method, path, auth) == ("POST", "/v1/chat/completions", "Bearer sk-secret")
    assert body == first_body and json.loads(body)["model"] == "toy-judge"


def test_origin_compares_scheme_host_and_port():
    from plw.evaluation.judges.endpoint import origin

    assert origin("http://Example.com/v1") == origin("http://example.com:80/x")
    assert origin("https://example.com/v1") != origin("http://example.com/v1")
    assert origin("http://127.0.0.1:8000/v1") != origin("http://127.0.0.1:8001/v1")
    assert origin("http://127.0.0.1:bad/") != origin("http://127.0.0.1/")


def write_judge(tmp_path, text: str):
    (tmp_path / "judge.txt").write_text((HERE / "pairwise.txt").read_text())
    path = tmp_path / "judge.yaml"
    head = "type: endpoint\nbase_url: http://127.0.0.1:8000/v1\nmodel: m\nprompt: judge.txt\n"
    path.write_text(head + text)
    return path


def test_inline_api_key_is_refused_with_a_hint(tmp_path):
    path = write_judge(tmp_path, "api_key: sk-inline\n")
    with pytest.raises(PLWError) as err:
        JudgeConfig.from_file(path)
    message = str(err.value)
    assert message.startswith(f"{path}: unknown key 'api_key'") and "environment variable" in message
    assert "api_key_env" in message and "sk-inline" not in message and "\n" not in message


def test_unknown_judge_key_names_file_and_key(tmp_path):
    with pytest.raises(PLWError, match=r"judge.yaml: unknown key 'timout' \(allowed: type, prompt, "):
        JudgeConfig.from_file(write_judge(tmp_path, "timout: 5\n"))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("max_retries: -1\n", "max_retries: "),
        ("timeout: 0\n", "timeout: "),
        ("verdicts: [a, b, c, d]\n", "verdicts: "),  # two, or three with a tie
        ("verdicts: [a]\n", "verdicts: "),
        ("api_key_env: sk-pasted-key\n", "api_key_env: must name an environment variable"),
    ],
)
def test_judge_values_are_checked(tmp_path, text, match):
    with pytest.raises(PLWError, match=match) as err:
        JudgeConfig.from_file(write_judge(tmp_path, text))
    assert "sk-pasted-key" not in str(err.value)


def test_judge_type_is_checked(tmp_path):
    path = tmp_path / "judge.yaml"
    path.write_text("type: remote\n")
    with pytest.raises(PLWError, match="judge.yaml: type: "):
        JudgeConfig.from_file(path)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_judge_keeps_generations_and_rerun_only_judges(tmp_path, alpaca_dir, chat_server):
    from plw.evaluation.tasks.alpaca_eval import GENERATIONS

    lm = DummyLM(responses=lambda prompt: "GOOD answer")
    out = tmp_path / "out"
    dead_url = f"http://127.0.0.1:{closed_port()}/v1"
    (tmp_path / "dead").mkdir()
    dead = endpoint_config(tmp_path / "dead", dead_url)
    with pytest.raises(PLWError) as err:
        evaluate(lm, "alpaca_eval", data_dir=alpaca_dir, judge=str(dead), output_dir=out, progress=False)
    message = str(err.value)
    assert f"judge endpoint {dead_url}/chat/completions" in message and "\n" not in message
    assert str(out / GENERATIONS) in message
    assert len(lm.calls) == len(ROWS)  # generated once
    saved = json.loads((out / GENERATIONS).read_text())
    assert [x["output"] for x in saved["items"]] == ["GOOD answer"] * len(ROWS)
    assert not (out / "alpaca_eval.metrics.json").exists()

    live = endpoint_config(tmp_path, chat_server)
    result = evaluate(lm, "alpaca_eval", data_dir=alpaca_dir, judge=str(live), output_dir=out, progress=False)
    assert result["alpaca_eval"]["win_rate"] == 1.0
    assert len(lm.calls) == len(ROWS)  # the rerun judged the saved outputs, generate was not called
    assert len(SEEN) == 2 * len(ROWS)


def test_saved_generations_of_other_settings_are_not_reused(tmp_path, alpaca_dir):
    from plw.evaluation.tasks.alpaca_eval import GENERATIONS

    judge = load_judge("local", lm=DummyLM(verdict_logprobs))
    out = tmp_path / "out"
    evaluate(DummyLM(), "alpaca_eval", data_dir=alpaca_dir, judge=judge, output_dir=out, progress=False)
    again = DummyLM()  # another template: the saved outputs do not answer these prompts
    evaluate(
        again,
        "alpaca_eval",
        data_dir=alpaca_dir,
        judge=judge,
        template="none",
        output_dir=out,
        progress=False,
    )
    assert again.calls == [r["instruction"] for r in ROWS]
    (out / GENERATIONS).write_text("{not json")  # a damaged file is regenerated, not an error
    third = DummyLM()
    evaluate(third, "alpaca_eval", data_dir=alpaca_dir, judge=judge, limit=1, output_dir=out, progress=False)
    assert len(third.calls) == 1 and json.loads((out / GENERATIONS).read_text())["settings"]["limit"] == 1


def test_cli_unreachable_judge_is_one_line_exit_2(tmp_path, alpaca_dir, chat_server, monkeypatch, plw_cli):
    from plw.evaluation.tasks.alpaca_eval import GENERATIONS

    lm = DummyLM(responses=lambda prompt: "GOOD answer")
    monkeypatch.setattr("plw.evaluation.run.resolve_lm", lambda model, **kwargs: lm)
    (tmp_path / "dead").mkdir()
    dead_url = f"http://127.0.0.1:{closed_port()}/v1"
    dead = endpoint_config(tmp_path / "dead", dead_url)
    live = endpoint_config(tmp_path, chat_server)
    out = tmp_path / "out"

    def run(judge):
        argv = ["eval", "-m", "x", "-t", "alpaca_eval", "--data-dir", alpaca_dir]
        return plw_cli(*argv, "--judge", judge, "-o", out, "--no-progress")

    code, _, err = run(dead)
    assert code == 2 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and f"judge endpoint {dead_url}/chat/completions" in lines[0]
    assert (out / GENERATIONS).is_file() and len(lm.calls) == len(ROWS)
    code, _, err = run(live)
    assert code == 0, err
    assert len(lm.calls) == len(ROWS)  # not generated again
