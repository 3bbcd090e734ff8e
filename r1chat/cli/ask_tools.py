"""`ask --mcp`: the chat's tool rounds, without asking: a call runs only if `--allow-tool`
names it; any other is refused (the model is told, stderr says so). Each call is a line on
stderr; stdout stays the answer."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from r1chat.config.settings import Settings
from r1chat.core.errors import UsageError
from r1chat.core.events import AnswerDelta, Done, Event
from r1chat.core.messages import ToolCall
from r1chat.core.printable import one_line
from r1chat.core.request import Control, Request
from r1chat.core.turn import run_turn
from r1chat.engine.base import Engine
from r1chat.session import tool_rounds
from r1chat.session.tool_rounds import Called, Round

if TYPE_CHECKING:  # (the MCP client, asyncio and all, is imported only for --mcp)
    from r1chat.mcp.client import McpHub


def open_hub(file: str | None, allowed: list[str]) -> McpHub | None:
    """The servers of `--mcp [FILE]`, started (None without `--mcp`); every name in
    `allowed` must be one of their tools."""
    from pathlib import Path

    if file is None:
        return None
    from r1chat.mcp.client import McpHub
    from r1chat.mcp.config import load

    hub = McpHub(load(Path(file) if file else None, required=True))
    if not hub.specs:
        raise UsageError("--mcp: no MCP server in the file is enabled")
    hub.start()
    for problem in hub.problems:
        print(f"warning: {problem}", file=sys.stderr)
    names = {t.name for t in hub.tools}
    unknown = [a for a in allowed if a not in names]
    if unknown:
        hub.close()
        have = ", ".join(sorted(names)) or "none"
        raise UsageError(f"--allow-tool {unknown[0]}: no such tool (the servers give: {have})")
    return hub


def run_rounds(
    engine: Engine,
    request: Request,
    control: Control,
    settings: Settings,
    hub: McpHub,
    allowed: set[str],
    new_round: Callable[[list[Round]], None],
) -> Iterator[Event]:
    """The reply's events, round after round: each round's calls run (or are refused),
    their results go back, until a round answers (or `MAX_ROUNDS` have called)."""
    rounds: list[Round] = []
    while True:
        tools = tool_rounds.offered(hub.offered, len(rounds))
        asked = replace(
            request,
            messages=(*request.messages, *tool_rounds.messages(rounds)),
            tools=tools,
        )
        reader = tool_rounds.AnswerCalls(tools) if tools is not None else None
        for event in run_turn(engine, asked, control, settings.guards):
            if reader is not None and isinstance(event, AnswerDelta):
                if text := reader.feed(event.text):
                    yield AnswerDelta(text)
                continue
            if not isinstance(event, Done):
                yield event
                continue
            calls: list[ToolCall] = []
            if reader is not None:
                if text := reader.finish():
                    yield AnswerDelta(text)
                event = replace(event, content=reader.shown)
                calls = reader.calls
                if reader.dropped:
                    print(
                        f"warning: the model still called tools after {len(rounds)} rounds; "
                        "its calls were dropped",
                        file=sys.stderr,
                    )
            if not calls or control.cancelled or event.finish_reason == "cancelled":
                yield event
                return
            called = [_run(c, hub, allowed, control) for c in calls]
            rounds.append(Round(event.reasoning, event.content, called, event.stats.to_dict()))
            new_round(rounds)
            if control.cancelled:
                yield replace(event, finish_reason="cancelled", content="")
                return


def _run(call: ToolCall, hub: McpHub, allowed: set[str], control: Control) -> Called:
    c, name = Called(call), call.name
    shown = f"{name} {one_line(call.arguments)}"
    if name not in allowed:
        c.status = "denied"
        print(f"tool {shown}: refused (--allow-tool {name} allows it)", file=sys.stderr)
        return c
    print(f"tool {shown} …", file=sys.stderr, flush=True)
    future = hub.call(name, call.arguments)
    while not future.done():
        if control.cancelled:  # Ctrl-C
            future.cancel()
            c.status = "stopped"
            print(f"tool {name}: stopped", file=sys.stderr)
            return c
        time.sleep(0.05)
    result = future.result()
    c.status, c.result = ("error" if result.error else "ok"), result.text
    what = one_line(result.text)[:120] if result.error else f"{len(result.text):,} characters"
    print(f"tool {name}: {c.status} ({what})", file=sys.stderr)
    return c
