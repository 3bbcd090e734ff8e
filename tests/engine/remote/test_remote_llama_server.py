"""The remote engine against a real OpenAI-compatible server: llama-cpp-python's own
(`python -m llama_cpp.server`, from the `server` extra) serving a scripted model on
127.0.0.1, in inline-tag mode (the reasoning comes inside `content`, between `<think>`
tags), end to end through `r1chat ask --endpoint` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from r1chat.core.events import Done, Event
from r1chat.core.messages import Message
from r1chat.core.request import Control, Request
from r1chat.core.turn import run_turn
from r1chat.engine.remote.engine import RemoteEngine
from tests.fixtures.llama_server import ALIAS, KEY, KEY_ENV, Served, needs_server

pytestmark = needs_server


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


def ask(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "r1chat", "ask", *args],
        input="",
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ask_remote(served: Served, *args: str) -> subprocess.CompletedProcess[str]:
    return ask("--endpoint", served.url, "--api-key-env", KEY_ENV, *args)


def test_ask_plain(served: Served) -> None:
    proc = ask_remote(served, "What is 2+2?")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == served.model.answer + "\n"
    assert proc.stderr == ""


def test_ask_thinking_show(served: Served) -> None:
    proc = ask_remote(served, "--thinking", "show", "What is 2+2?")
    m = served.model
    assert proc.stdout == f"<think>\n{m.reasoning.strip()}\n</think>\n\n{m.answer}\n"


def test_ask_json(served: Served) -> None:
    proc = ask_remote(served, "--json", "What is 2+2?")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["model"] == ALIAS
    assert out["reasoning_content"] == served.model.reasoning.strip()
    assert out["content"] == served.model.answer
    assert out["finish_reason"] == "stop"
    stats = out["stats"]
    # one delta per token; the old template makes the model write `<think>` and "\n" too
    assert stats["thinking_tokens"] == served.model.thinking_tokens + 3
    # "\n\n" after `</think>` adds one; the two tokens of "✓" arrive as one delta
    assert stats["answer_tokens"] == served.model.answer_tokens


def test_ask_think_budget_continues_the_reply(served: Served) -> None:
    proc = ask_remote(served, "--json", "--think-budget", "4", "What is 2+2?")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["stats"]["thinking_stopped_by"] == "budget"
    assert out["stats"]["thinking_tokens"] == 4
    assert out["reasoning_content"].endswith("Considering the limited time, I will answer now.")
    assert out["content"] == served.model.answer


def test_ask_no_think(served: Served) -> None:
    proc = ask_remote(served, "--json", "--no-think", "What is 2+2?")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["reasoning_content"], out["content"]) == ("", served.model.answer)


def test_ask_with_a_configured_remote(served: Served) -> None:
    home = Path(os.environ["R1CHAT_HOME"])
    from r1chat.config import paths

    config = paths.config_file()
    assert str(config).startswith(str(home))
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f'[model]\ndefault = "box"\n\n[remotes.box]\nurl = "{served.url}"\n'
        f'api_key_env = "{KEY_ENV}"\n'
    )
    proc = ask("What is 2+2?")  # the default model is the remote
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == served.model.answer + "\n"


def test_wrong_key_is_one_line_without_the_key(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "sk-wrong-key-abcdefgh"
    monkeypatch.setenv(KEY_ENV, wrong)
    proc = ask_remote(served, "-m", ALIAS, "What is 2+2?")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")
    assert "401" in proc.stderr and f"${KEY_ENV}" in proc.stderr
    assert wrong not in proc.stderr


def test_unset_key_variable(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV)
    proc = ask_remote(served, "What is 2+2?")
    assert proc.returncode == 1
    assert proc.stderr == (
        f"error: environment variable {KEY_ENV} (named by --api-key-env) is not set\n"
    )


def test_engine_in_a_worker_thread_with_history(served: Served) -> None:
    engine = RemoteEngine(served.url, api_key=KEY)
    history = (
        Message("user", "What is 2+2?"),
        Message("assistant", f"<think>\n{served.model.reasoning}</think>\n\n{served.model.answer}"),
        Message("user", "And again?"),
    )
    events: list[Event] = []
    worker = threading.Thread(
        target=lambda: events.extend(run_turn(engine, Request(messages=history), Control()))
    )
    worker.start()
    worker.join(30)
    engine.close()
    done = events[-1]
    assert isinstance(done, Done)
    assert (done.reasoning, done.content) == (served.model.reasoning.strip(), served.model.answer)


def test_doctor_check(served: Served) -> None:
    from r1chat.diagnostics.endpoint import check_endpoint

    checks = check_endpoint(served.url, api_key_env=KEY_ENV)
    assert [(c.name, c.ok) for c in checks] == [
        ("server", True),
        ("models", True),
        ("completion", True),
        ("sampling", True),
    ]
    assert checks[1].detail == ALIAS
    assert "inline text" in checks[2].detail
    assert checks[3].detail == "takes top_k and min_p as r1chat sends them"
