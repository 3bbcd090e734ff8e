"""A reply that calls tools: rounds of reasoning, calls and their results, then the answer.

Each round the model reasons and answers; an answer that calls tools is taken out of the
text (`CallReader`), the calls are allowed or not, run, and their results go back with
the next round's prompt. The chat and `ask --mcp` both run replies this way; History
keeps the rounds with the reply (`to_record` / `from_record`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from r1chat.core.messages import Message, ToolCall
from r1chat.core.tools import CallReader, Tool, Tools

if TYPE_CHECKING:  # (the MCP client, asyncio and all, is imported only where servers run)
    from r1chat.mcp.client import McpTool

MAX_ROUNDS = 8
"""Rounds of calls in one reply; the round after the last may only answer."""

STATUS_FOR_MODEL = {
    "denied": "The user did not allow this call.",
    "stopped": "The user stopped this call before it finished.",
}


@dataclass
class Called:
    """A call the model made, and what became of it: `status` is asked, ok, error, denied
    or stopped."""

    call: ToolCall
    status: str = "asked"
    result: str = ""

    @property
    def for_model(self) -> str:
        """What the model reads as the call's result."""
        if self.status in STATUS_FOR_MODEL:
            return STATUS_FOR_MODEL[self.status]
        return f"Error: {self.result}" if self.status == "error" else self.result


@dataclass
class Round:
    """One round: its reasoning, its text (if any, before the calls), its calls."""

    reasoning: str = ""
    text: str = ""
    calls: list[Called] = field(default_factory=list)
    stats: dict[str, Any] | None = None  # its reply's (`Stats.to_dict()`)


class AnswerCalls:
    """A round's answer as it streams, its tool calls taken out (`CallReader`): `feed`
    and `finish` return the text to show. In the `final` round (after `MAX_ROUNDS`) calls
    are not run: `dropped` counts them."""

    def __init__(self, tools: Tools) -> None:
        self.final = not tools.callable
        self.calls: list[ToolCall] = []
        self.dropped = 0
        self._reader = CallReader()
        self._shown: list[str] = []

    def feed(self, text: str) -> str:
        return self._take(*self._reader.feed(text))

    def finish(self) -> str:
        return self._take(*self._reader.finish())

    @property
    def shown(self) -> str:
        """The answer's text, without its calls."""
        return "".join(self._shown)

    def _take(self, text: str, calls: list[ToolCall]) -> str:
        if self.final:
            self.dropped += len(calls)
        else:
            self.calls += calls
        if text:
            self._shown.append(text)
        return text


def messages(rounds: Sequence[Round]) -> list[Message]:
    """The rounds as the next prompt carries them: each answer with its calls, then a
    result for every call."""
    out: list[Message] = []
    for r in rounds:
        out.append(Message("assistant", r.text, tool_calls=tuple(c.call for c in r.calls)))
        out += [Message("tool", c.for_model, name=c.call.name) for c in r.calls]
    return out


def offered(tools: Sequence[McpTool], rounds_done: int) -> Tools | None:
    """The tools a round may call (none after `MAX_ROUNDS`: that round answers)."""
    if not tools:
        return None
    listed = tuple(
        Tool(t.name, t.description, json.dumps(t.schema or {"type": "object"})) for t in tools
    )
    return Tools(listed, choice="auto" if rounds_done < MAX_ROUNDS else "none")


def to_record(rounds: Sequence[Round]) -> list[dict[str, Any]]:
    return [
        {
            "reasoning": r.reasoning,
            "text": r.text,
            "stats": r.stats,
            "calls": [
                {
                    "id": c.call.id,
                    "name": c.call.name,
                    "arguments": c.call.arguments,
                    "status": c.status,
                    "result": c.result,
                }
                for c in r.calls
            ],
        }
        for r in rounds
    ]


def from_record(record: list[dict[str, Any]] | None) -> list[Round]:
    """Rounds read back from History (what does not read is left out)."""
    out = []
    for r in record or []:
        if not isinstance(r, dict):
            continue
        calls = [
            Called(
                ToolCall(str(c.get("id", "")), str(c.get("name", "")), str(c.get("arguments", ""))),
                str(c.get("status", "ok")),
                str(c.get("result", "")),
            )
            for c in r.get("calls") or []
            if isinstance(c, dict)
        ]
        stats = r.get("stats") if isinstance(r.get("stats"), dict) else None
        out.append(Round(str(r.get("reasoning", "")), str(r.get("text", "")), calls, stats))
    return out
