"""`r1chat doctor --endpoint`: the checks behind it, against the loopback server."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator

import pytest

from r1chat.config.file import Config
from r1chat.diagnostics.endpoint import check_endpoint, run_endpoint_check
from tests.fixtures.openai_server import Fault, OpenAIServer

KEY = "sk-check-0123456789abcdef"


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer(api_key=KEY) as s:
        yield s


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECK_KEY", KEY)
    monkeypatch.delenv("R1CHAT_API_KEY", raising=False)


def test_a_good_server(server: OpenAIServer) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert run_endpoint_check(server.url, api_key_env="CHECK_KEY", out=out, err=err) == 0
    lines = out.getvalue().splitlines()
    assert lines[0] == f"server      ok: {server.url} answers; API key accepted"
    assert lines[1] == "models      ok: deepseek-ai/DeepSeek-R1"
    assert lines[2].startswith("completion  ok: first token 'Okay' in ")
    assert "reasoning in a separate field" in lines[2]
    assert lines[3] == "sampling    ok: takes top_k and min_p as r1chat sends them"
    assert err.getvalue() == ""
    body = server.chat_posts()[-1].body
    assert body["max_tokens"] == 1 and body["temperature"] == 0.0


def test_a_server_that_refuses_top_k_is_named(server: OpenAIServer) -> None:
    server.fail(Fault(status=400, message="Unrecognized request argument supplied: top_k"))
    checks = check_endpoint(server.url, api_key_env="CHECK_KEY")
    assert [(c.name, c.ok) for c in checks][-2:] == [("completion", True), ("sampling", True)]
    assert checks[-1].detail == (
        "refused top_k and min_p: they are left out, so the server's own apply"
    )


def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out, err = io.StringIO(), io.StringIO()
    assert run_endpoint_check(f"127.0.0.1:{port}", out=out, err=err) == 1
    message = f"cannot connect to http://127.0.0.1:{port}/v1: connection refused"
    assert out.getvalue().startswith(f"server  FAILED: {message}")
    assert err.getvalue() == "error: 1 of 1 checks failed (server)\n"  # the reason once, above


def test_wrong_key(server: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECK_KEY", "sk-wrong-key-000000")
    checks = check_endpoint(server.url, api_key_env="CHECK_KEY")
    assert [(c.name, c.ok) for c in checks] == [("server", False)]
    assert "401" in checks[0].detail and "sk-wrong-key-000000" not in checks[0].detail


def test_unserved_model(server: OpenAIServer) -> None:
    checks = check_endpoint(server.url, model="r1:7b", api_key_env="CHECK_KEY")
    assert [(c.name, c.ok) for c in checks] == [("server", True), ("models", False)]
    assert checks[1].detail == "'r1:7b' is not served; the server lists: deepseek-ai/DeepSeek-R1"


def test_a_configured_remote_by_name_and_json(server: OpenAIServer) -> None:
    config = Config.load()
    config.data = {"remotes": {"deepseek": {"url": server.url, "api_key_env": "CHECK_KEY"}}}
    config.save()
    out = io.StringIO()
    assert run_endpoint_check("deepseek", as_json=True, out=out) == 0
    obj = json.loads(out.getvalue())
    assert [c["name"] for c in obj["checks"]] == ["server", "models", "completion", "sampling"]
    assert obj["problems"] == []
    assert KEY not in out.getvalue()


def test_doctor_command(server: OpenAIServer) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "r1chat",
            "doctor",
            "--endpoint",
            server.url,
            "--api-key-env",
            "CHECK_KEY",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert [line.split()[:2] for line in proc.stdout.splitlines()] == [
        ["server", "ok:"],
        ["models", "ok:"],
        ["completion", "ok:"],
        ["sampling", "ok:"],
    ]
