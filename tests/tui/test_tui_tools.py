"""MCP tools in the chat: a scripted model (R1-0528's tool-call tokens) calls `get_weather`
of a real stdio MCP server (`tests/fixtures/mcp_server.py`, the official SDK); the call is
a card between the reasoning and what follows, asked about first (once, always, deny),
its result goes back with the next round; esc stops a call asked or running; a server
that dies is one line and the chat goes on; History keeps the rounds. Real llama.cpp, the
real app through Pilot.

The scripted model is a bigram model: handed a result it calls again, so every round
calls; what these tests check is each round's handling."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from r1chat.config import paths
from r1chat.mcp.client import McpHub
from r1chat.mcp.config import load
from r1chat.session import tool_rounds
from r1chat.tui.app import ChatApp
from r1chat.tui.widgets.tool_card import ToolCard
from r1chat.tui.widgets.turns import AssistantTurn
from tests.fixtures.scripted import ScriptedModel
from tests.fixtures.scripted_tools import write_marked_call_model
from tests.fixtures.terminal import Terminal
from tests.tui.pilot import SIZE, make_app, ready, run_async, settle, wait_for

SERVER = Path(__file__).resolve().parents[1] / "fixtures" / "mcp_server.py"


@pytest.fixture
def caller(scripted_dir: Path) -> ScriptedModel:
    return write_marked_call_model(scripted_dir)


def hub(tmp_path: Path, mode: str = "ok") -> McpHub:
    config = tmp_path / "mcp.json"
    server = {"command": sys.executable, "args": [str(SERVER), "--mode", mode]}
    config.write_text(json.dumps({"mcpServers": {"weather": server}}))
    return McpHub(load(config, required=True))


def calls_made(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


async def start(app: ChatApp, pilot) -> None:  # type: ignore[no-untyped-def]
    await ready(pilot)
    await wait_for(pilot, lambda: app.chat.session.mcp is not None)
    app.chat.prompt.insert("What is the weather in Paris?")
    await pilot.press("enter")


async def card_asking(app: ChatApp, pilot, n: int) -> ToolCard:  # type: ignore[no-untyped-def]
    """The `n`th card (1-based), once it asks."""
    await wait_for(
        pilot,
        lambda: (
            len(app.chat.transcript.query(ToolCard)) >= n
            and app.chat.transcript.query(ToolCard)[n - 1].state == "asking"
        ),
    )
    return app.chat.transcript.query(ToolCard)[n - 1]


async def first_call_allowed(app: ChatApp, pilot) -> ToolCard:  # type: ignore[no-untyped-def]
    """The chat started, its first call asked about and allowed (`y`): its card."""
    await start(app, pilot)
    card = await card_asking(app, pilot, 1)
    await pilot.press("y")
    return card


@run_async
async def test_a_call_asked_run_fed_back_then_denied_then_stopped(
    caller: ScriptedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_FIXTURE_LOG", str(tmp_path / "calls.log"))
    app = make_app(caller, mcp=hub(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        first = await card_asking(app, pilot, 1)
        assert app.focused is first and calls_made(tmp_path) == []  # nothing runs unasked
        assert '{"city": "Paris"}' in str(first.render())
        made = app.chat.transcript.query(AssistantTurn)[0]
        assert "the weather" in made.reasoning.text
        assert made.answer.text == ""  # the call is the card, not text in the answer
        await pilot.press("y")
        second = await card_asking(app, pilot, 2)  # the next round called again
        assert calls_made(tmp_path) == ["get_weather Paris"]
        assert "✓ Sunny, 21 °C in Paris" in str(first.render())
        sent = app.chat.session.dialogue.messages()
        assert [(m.role, m.content) for m in sent[-2:]][-1] == ("tool", "Sunny, 21 °C in Paris")
        assert len(app.chat.transcript.query(AssistantTurn)) == 2  # its reasoning shown
        await pilot.press("n")
        third = await card_asking(app, pilot, 3)
        assert "denied" in str(second.render()) and calls_made(tmp_path) == ["get_weather Paris"]
        assert app.chat.session.dialogue.messages()[-1].content == (
            "The user did not allow this call."
        )
        await pilot.press("escape")  # stops the asking, and the reply
        await settle(pilot)
        await wait_for(pilot, lambda: not app.chat.session.calling)
        assert "stopped" in str(third.render())
        assert app.focused is app.chat.prompt
        ex = app.chat.session.dialogue.exchanges[-1]
        stored = app.history.message(ex.reply_id or 0)
        assert stored is not None and stored.finish_reason == "cancelled"
        rounds = tool_rounds.from_record(stored.tool_rounds)
        assert [[c.status for c in r.calls] for r in rounds] == [["ok"], ["denied"], ["stopped"]]
        assert rounds[0].calls[0].result == "Sunny, 21 °C in Paris"
        markdown = app.history.export_markdown(app.chat.session.dialogue.id or 0)
        assert '**Tool call** `get_weather` `{"city": "Paris"}` (ok)' in markdown
        assert "Sunny, 21 °C in Paris" in markdown and "(denied)" in markdown
        cid = app.chat.session.dialogue.id or 0
    reopened = make_app(caller)
    async with reopened.run_test(size=SIZE) as pilot:  # the rounds come back from History
        await ready(pilot)
        await reopened.chat.open_conversation(cid)
        await pilot.pause()
        cards = reopened.chat.transcript.query(ToolCard)
        assert [c.state for c in cards] == ["ok", "denied", "stopped"]


@run_async
async def test_always_is_remembered_and_rounds_are_bounded(
    caller: ScriptedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_FIXTURE_LOG", str(tmp_path / "calls.log"))
    monkeypatch.setattr(tool_rounds, "MAX_ROUNDS", 3)
    app = make_app(caller, mcp=hub(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await card_asking(app, pilot, 1)
        await pilot.press("a")
        await wait_for(pilot, lambda: len(calls_made(tmp_path)) == 3, timeout=60)
        await settle(pilot)
        await wait_for(pilot, lambda: not app.chat.session.calling)
        await settle(pilot)
        assert [c.state for c in app.chat.transcript.query(ToolCard)] == ["ok"] * 3  # asked once
        assert len(app.chat.transcript.query(AssistantTurn)) == 4  # the last may only answer
        allowed = json.loads((paths.config_dir() / "mcp-allowed.json").read_text())
        assert allowed == {"always": ["weather/get_weather"]}


@run_async
async def test_a_server_that_dies_is_one_line_and_the_chat_goes_on(
    caller: ScriptedModel, tmp_path: Path
) -> None:
    app = make_app(caller, mcp=hub(tmp_path, "die"))
    async with app.run_test(size=SIZE) as pilot:
        card = await first_call_allowed(app, pilot)
        await wait_for(pilot, lambda: card.state == "error")
        assert "MCP server 'weather' failed" in str(card.render())
        await wait_for(pilot, lambda: not app.chat.session.calling)
        await settle(pilot)
        assert app.chat.session.mcp is not None and app.chat.session.mcp.offered == []
        assert app.chat.session.refusal() is None  # the chat goes on


@run_async
async def test_esc_stops_a_hanging_tool(caller: ScriptedModel, tmp_path: Path) -> None:
    app = make_app(caller, mcp=hub(tmp_path, "hang"))
    async with app.run_test(size=SIZE) as pilot:
        card = await first_call_allowed(app, pilot)
        await wait_for(pilot, lambda: card.state == "running")
        await pilot.press("escape")
        await wait_for(pilot, lambda: card.state == "stopped")
        await wait_for(pilot, lambda: not app.chat.session.calling)
        assert len(app.chat.transcript.query(AssistantTurn)) == 1  # no round after it
        assert app.chat.session.refusal() is None


@run_async
async def test_esc_as_the_next_round_starts_stops_it(
    caller: ScriptedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An esc that lands after a call's result, while the next round's turn is mounted
    (neither a call nor a reply to stop yet), still stops the reply."""
    monkeypatch.setenv("MCP_FIXTURE_LOG", str(tmp_path / "calls.log"))
    app = make_app(caller, mcp=hub(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        chat = app.chat
        start_reply = chat._start_reply

        async def esc_meanwhile(*args):  # type: ignore[no-untyped-def]
            chat.action_stop()  # (as the key would, in the mount's await)
            await start_reply(*args)

        monkeypatch.setattr(chat, "_start_reply", esc_meanwhile)
        card = await first_call_allowed(app, pilot)
        await wait_for(pilot, lambda: card.state == "ok")
        await wait_for(pilot, lambda: chat.session.current is None and not chat.session.calling)
        await settle(pilot)
        assert len(chat.transcript.query(ToolCard)) == 1  # the next round called nothing
        ex = chat.session.dialogue.exchanges[-1]
        stored = app.history.message(ex.reply_id or 0)
        assert stored is not None and stored.finish_reason == "cancelled"


def test_a_tool_call_in_a_real_terminal(caller: ScriptedModel, tmp_path: Path) -> None:
    """`r1chat chat --mcp FILE` on a pseudo-terminal: asked, allowed, its result shown, the
    server's own output kept off the screen, and nothing left running after ctrl+q."""
    config = tmp_path / "mcp.json"
    server = {"command": sys.executable, "args": [str(SERVER)], "env": {"NOISY": "1"}}
    config.write_text(json.dumps({"mcpServers": {"weather": server}}))
    argv = [sys.executable, "-m", "r1chat", "chat", "-m", str(caller.path), "--threads", "1"]
    term = Terminal([*argv, "--mcp", str(config)], cols=100, rows=30)
    try:
        term.wait_for_text("2 tools from 1 MCP server")
        term.type("Weather in Paris?\r")
        term.wait_for_text("Run this tool?")
        allowed = len(term.output)
        term.type("y")
        term.wait_for_text("Sunny, 21", since=allowed)
        result = term.output.find(b"Sunny, 21", allowed)
        term.wait_for_text("Run this tool?", since=result)  # the next round called again
        term.type("\x1b")  # esc: stopped
        term.wait_for_text("stopped")
        term.type("\x11")  # ctrl+q
        assert term.wait(30) == 0
    finally:
        term.close()
    assert b"Processing request" not in term.output  # the server's log went to mcp.log
    assert (paths.log_dir() / "mcp.log").exists()
