"""`ask --mcp`: the chat's tool rounds without a question: a call runs only when
`--allow-tool` names it, each call is a line on stderr, stdout stays the answer, the rounds
are saved with the reply. The whole `r1chat ask` process, real llama.cpp on a scripted
model that calls `get_weather` every round (a bigram model), a real stdio MCP server."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from r1chat.config import paths
from r1chat.history.store import History
from r1chat.session import tool_rounds
from tests.fixtures.cli import one_error_line, r1chat
from tests.fixtures.scripted import ScriptedModel
from tests.fixtures.scripted_tools import write_marked_call_model

SERVER = Path(__file__).resolve().parents[1] / "fixtures" / "mcp_server.py"


@pytest.fixture
def caller(scripted_dir: Path) -> ScriptedModel:
    return write_marked_call_model(scripted_dir)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "mcp.json"
    server = {"command": sys.executable, "args": [str(SERVER)]}
    path.write_text(json.dumps({"mcpServers": {"weather": server}}))
    return path


def ask(caller: ScriptedModel, *args: str, log: Path) -> tuple[int, str, str]:
    out = r1chat(
        "ask",
        "-m",
        str(caller.path),
        "--threads",
        "1",
        *args,
        "weather in Paris?",
        env={"MCP_FIXTURE_LOG": str(log)},
    )
    return out.returncode, out.stdout, out.stderr


def test_allowed_calls_run_round_after_round_and_are_saved(
    caller: ScriptedModel, config: Path, tmp_path: Path
) -> None:
    log = tmp_path / "calls.log"
    code, stdout, stderr = ask(caller, "--mcp", str(config), "--allow-tool", "get_weather", log=log)
    assert log.read_text().splitlines() == ["get_weather Paris"] * tool_rounds.MAX_ROUNDS
    assert stderr.count("tool get_weather: ok (21 characters)") == tool_rounds.MAX_ROUNDS
    assert "still called tools after 8 rounds" in stderr  # the last round may only answer
    assert "tool▁call" not in stdout  # calls never reach stdout
    assert code == 3  # no answer: every round called
    with History(paths.history_db()) as h:
        [conversation] = h.list_conversations()
        reply = h.messages(conversation.id)[-1]
    rounds = tool_rounds.from_record(reply.tool_rounds)
    assert len(rounds) == tool_rounds.MAX_ROUNDS
    assert {c.result for r in rounds for c in r.calls} == {"Sunny, 21 °C in Paris"}
    assert "the weather" in rounds[0].reasoning


def test_a_call_not_allowed_is_refused_and_the_model_told(
    caller: ScriptedModel, config: Path, tmp_path: Path
) -> None:
    log = tmp_path / "calls.log"
    _, _, stderr = ask(caller, "--mcp", str(config), log=log)
    assert not log.exists()  # nothing ran
    assert 'tool get_weather {"city": "Paris"}: refused (--allow-tool get_weather' in stderr


def test_tool_options_are_checked_first(caller: ScriptedModel, config: Path) -> None:
    bad = r1chat("ask", "--allow-tool", "get_weather", "hi")
    assert one_error_line(bad.stderr) == "error: --allow-tool needs --mcp"
    assert bad.returncode == 2
    unknown = r1chat(
        "ask", "-m", str(caller.path), "--mcp", str(config), "--allow-tool", "nope", "hi"
    )
    assert one_error_line(unknown.stderr) == (
        "error: --allow-tool nope: no such tool (the servers give: add, get_weather)"
    )
    config.write_text('{"mcpServers": {"x": {"command": "a", "url": "http://b"}}}')
    both = r1chat("ask", "-m", str(caller.path), "--mcp", str(config), "hi")
    assert "give either a 'command' (stdio) or a 'url' (HTTP)" in one_error_line(both.stderr)
