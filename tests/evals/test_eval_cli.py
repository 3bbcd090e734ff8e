"""`r1chat eval` as a user runs it: real llama.cpp on scripted models that answer
`\\boxed{4}` whatever they are asked, questions from a loopback Hub or a file, results in
SQLite. Scores on these fixtures are exact."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.cli import ROOT, one_error_line, r1chat
from tests.fixtures.hub_server import FakeHub
from tests.fixtures.scripted import ScriptedModel, write_four_model

MATH_REPO = "datasets/HuggingFaceH4/MATH-500"


def question_set(answers: list[str]) -> bytes:
    rows = [
        {"problem": f"Problem {i}: what is 2 + 2?", "answer": a, "unique_id": f"test/{i}.json"}
        for i, a in enumerate(answers)
    ]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


@pytest.fixture(scope="module")
def four(tmp_path_factory: pytest.TempPathFactory) -> ScriptedModel:
    return write_four_model(tmp_path_factory.mktemp("four"))


@pytest.fixture
def hub_env(tmp_path: Path) -> dict[str, str]:
    return {"HF_HOME": str(tmp_path / "hf"), "HF_TOKEN": "", "HF_HUB_DISABLE_TELEMETRY": "1"}


def evaluate(*args: str, env: dict[str, str] | None = None) -> dict:
    out = r1chat("eval", *args, "--threads", "1", "--json", env=env)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    return json.loads(out.stdout)


def test_always_right_is_100_from_the_hub_and_cached_once(
    four: ScriptedModel, hub_env: dict[str, str]
) -> None:
    with FakeHub() as hub:
        hub.add(MATH_REPO, "test.jsonl", question_set(["4"] * 5))
        env = {**hub_env, "HF_ENDPOINT": hub.endpoint}
        got = evaluate(str(four.path), "--bench", "math500", "--samples", "2", env=env)
        assert (got["score"]["pass1"], got["score"]["cons"], got["score"]["questions"]) == (
            100.0,
            100.0,
            5,
        )
        assert got["score"]["outcomes"] == {"right": 10}
        assert len(hub.gets("test.jsonl")) == 1  # the bytes fetched once
    # the Hub is gone: the verified copy beside the models answers
    again = evaluate(str(four.path), "--bench", "math500", "--limit", "3", env=env)
    assert again["score"]["questions"] == 3 and again["run"] == 2


def test_a_copy_that_does_not_match_the_hubs_digest_is_refused(
    four: ScriptedModel, hub_env: dict[str, str]
) -> None:
    with FakeHub() as hub:
        hub.add(MATH_REPO, "test.jsonl", question_set(["4"]), sha256="0" * 64)
        env = {**hub_env, "HF_ENDPOINT": hub.endpoint}
        out = r1chat("eval", str(four.path), "--bench", "math500", env=env)
    assert out.returncode == 1
    assert "did not match the digest the Hub publishes" in one_error_line(out.stderr)


def test_always_wrong_is_0_and_half_right_is_50_with_its_error(
    four: ScriptedModel, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_bytes(question_set(["5", "5", "5"]))
    got = evaluate(str(four.path), "--bench", "math500", "--data", str(wrong))
    assert (got["score"]["pass1"], got["score"]["cons"]) == (0.0, 0.0)
    assert got["score"]["outcomes"] == {"wrong": 12}  # 4 samples by default
    half = tmp_path / "half.jsonl"
    half.write_bytes(question_set(["4", "\\frac{8}{2}", "5", "-4"]))
    got = evaluate(str(four.path), "--bench", "math500", "--data", str(half), "--samples", "3")
    assert got["score"]["pass1"] == 50.0 and round(got["score"]["stderr"], 2) == 28.87
    assert got["score"]["samples"] == 12 and got["spec"]["samples"] == 3
    shown = r1chat("eval", "show", str(got["run"]))
    assert "50.0 ± 28.9" in shown.stdout, shown.stdout
    assert "right 6 · wrong answer 6" in shown.stdout


def test_reasoning_that_never_closes_is_wrong_and_counted_apart(
    loop_model: ScriptedModel, tmp_path: Path
) -> None:
    data = tmp_path / "q.jsonl"
    data.write_bytes(question_set(["4", "4"]))
    got = evaluate(
        str(loop_model.path), "--bench", "math500", "--data", str(data), "--max-tokens", "64"
    )
    assert got["score"]["pass1"] == 0.0
    assert got["score"]["outcomes"] == {"unclosed": 8}  # no loop guard, no budget: the cap


def test_the_gated_set_without_a_token_says_so_in_one_line(
    four: ScriptedModel, hub_env: dict[str, str]
) -> None:
    with FakeHub() as hub:
        hub.add("datasets/Idavidrein/gpqa", "gpqa_diamond.csv", b"Question\n")
        hub.gate("datasets/Idavidrein/gpqa", "hf_right")
        env = {**hub_env, "HF_ENDPOINT": hub.endpoint}
        out = r1chat("eval", str(four.path), "--bench", "gpqa", env=env)
    assert out.returncode == 1
    line = one_error_line(out.stderr)
    assert "GPQA Diamond (Idavidrein/gpqa) is gated" in line and "HF_TOKEN" in line


def test_gpqa_choices_from_a_file_are_graded_by_letter(four: ScriptedModel, tmp_path: Path) -> None:
    data = tmp_path / "gpqa.csv"
    data.write_text(
        "Record ID,Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,"
        "Incorrect Answer 3\nr1,Which?,a,b,c,d\n"
    )
    got = evaluate(str(four.path), "--bench", "gpqa", "--data", str(data))
    assert got["score"]["outcomes"] == {"unread": 4}  # it answers \boxed{4}, not a letter


def test_samples_that_start_together_share_their_prompt_and_finish(
    four: ScriptedModel, tmp_path: Path
) -> None:
    """Eight samples a question on eight slots start together, each copying its prompt
    from whichever sibling reads it first; a copy that waited on a reading sibling once
    held every step back for good (3 runs: that came in 5 of 6)."""
    rows = "".join(f"r{i},Which {'one ' * i}?,a,b,c,d\n" for i in range(3))
    data = tmp_path / "gpqa.csv"
    data.write_text("Record ID,Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,"
                    "Incorrect Answer 3\n" + rows)  # fmt: skip
    for run in range(3):
        out = r1chat(
            "eval", str(four.path), "--bench", "gpqa", "--data", str(data), "--samples", "8",
            "--threads", "1", "--json", env={"R1CHAT_HOME": str(tmp_path / f"home{run}")},
            timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["score"]["samples"] == 24


def test_bad_usage_is_one_line() -> None:
    for args, words in [
        (("eval", "x.gguf"), "which benchmark?"),
        (("eval", "x.gguf", "--bench", "mmlu"), "no benchmark 'mmlu'"),
        (("eval", "x.gguf", "--bench", "math500", "--samples", "0"), "--samples must be"),
        (("eval", "--resume"), "no unfinished eval run to resume"),
        (("eval", "show", "7"), "no eval run 7"),
    ]:
        out = r1chat(*args)
        assert out.returncode in (1, 2) and words in one_error_line(out.stderr), (args, out.stderr)


def test_a_killed_run_resumes_with_no_sample_scored_twice_or_lost(tmp_path: Path) -> None:
    slow = write_four_model(tmp_path, thinking_tokens=1500)  # ~1 s a sample here
    data = tmp_path / "q.jsonl"
    data.write_bytes(question_set(["4", "4", "5", "4", "4"]))
    db = Path(os.environ["R1CHAT_HOME"]) / "data" / "evals.sqlite3"
    args = ["eval", str(slow.path), "--bench", "math500", "--data", str(data), "--samples", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "r1chat", *args, "--threads", "1"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stored = 0
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            stored = _stored(db)
            if stored >= 2:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    assert 2 <= stored < 10, f"the run was not caught mid-way ({stored} stored)"
    got = evaluate("--resume", "1")
    assert got["run"] == 1 and got["finished"]
    with sqlite3.connect(db) as conn:
        keys = conn.execute("SELECT question, sample FROM samples").fetchall()
    assert len(keys) == len(set(keys)) == 10
    assert got["score"]["pass1"] == 80.0 and got["score"]["samples"] == 10
    finished = r1chat("eval", "--resume", "1")
    assert "run 1 is finished" in one_error_line(finished.stderr)


def _stored(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM samples").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_a_server_is_asked_with_the_cards_protocol(tmp_path: Path) -> None:
    from tests.fixtures.openai_server import OpenAIServer

    data = tmp_path / "q.jsonl"
    data.write_bytes(question_set(["4", "5"]))
    with OpenAIServer(answer=("So", " $\\boxed{4}$", ".")) as server:
        got = evaluate(
            "--endpoint", server.url, "-m", "deepseek-ai/DeepSeek-R1", "--bench", "math500",
            "--data", str(data), "--samples", "2", "--max-tokens", "1000",
        )  # fmt: skip
        posts = server.chat_posts()
    assert got["score"]["pass1"] == 50.0 and got["score"]["outcomes"] == {"right": 2, "wrong": 2}
    assert len(posts) == 4
    for post in posts:
        body = post.body
        assert [m["role"] for m in body["messages"]] == ["user"]  # no system prompt
        assert body["messages"][0]["content"].endswith(
            "what is 2 + 2?\n\nPlease reason step by step, and put your final answer "
            "within \\boxed{}."
        )
        assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.6, 0.95, 1000)
    assert len({p.body.get("seed") for p in posts}) == 4  # a recorded seed a sample
