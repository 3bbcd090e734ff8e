"""Tool calls: the tools a request offers, the calls an answer makes, and the two ways an
R1 model writes them.

Models whose vocabulary has DeepSeek's tool-call tokens (R1-0528 and its Qwen3-8B
distill) write calls in their template's markers (`r1chat.core.r1.call_parts`). The first
distills were never trained to call tools: for them the tools are described in the prompt
as text (`fold`) and the answer is held, by grammar, to text or one JSON object
`{"tool_calls": [{"name": NAME, "arguments": {...}}]}`. `CallReader` reads either back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from r1chat.core import r1
from r1chat.core.messages import Message, ToolCall


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call: its name, what it does, its arguments' JSON schema
    (as JSON text)."""

    name: str
    description: str = ""
    parameters: str = '{"type": "object", "properties": {}}'

    def spec(self) -> dict[str, Any]:
        """The function as the prompt lists it (OpenAI's `function` object)."""
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        out["parameters"] = json.loads(self.parameters)
        return out


@dataclass(frozen=True, slots=True)
class Tools:
    """The tools of one request and how they may be used: `choice` is `auto` (text or
    calls), `required` (calls), `none` (text) or one tool's name (a call to it);
    `parallel`: several calls in one answer."""

    offered: tuple[Tool, ...]
    choice: str = "auto"
    parallel: bool = True

    @property
    def callable(self) -> tuple[Tool, ...]:
        """The tools the answer may call."""
        if self.choice == "none":
            return ()
        if self.choice in ("auto", "required"):
            return self.offered
        return tuple(t for t in self.offered if t.name == self.choice)

    @property
    def text_allowed(self) -> bool:
        return self.choice in ("auto", "none")


INTRO = "You can call any of the following function tools to satisfy the user's requests: "
"""How the prompt lists the tools (llama.cpp's own R1 tool template says the same)."""

JSON_FORMAT = (
    "To call tools, answer with only one JSON object, in this form:\n"
    '{"tool_calls": [{"name": "example_function_name", "arguments": {"arg1": "some_value"}}]}'
)
"""The call format of models without tool tokens, as the prompt describes it."""


def listing(tools: Tools) -> str:
    """The tools as the prompt lists them."""
    specs = [t.spec() for t in tools.offered]
    return INTRO + json.dumps(specs, indent=2, ensure_ascii=False)


def call_object(calls: Sequence[ToolCall]) -> str:
    """Calls as the JSON object of the format without tool tokens."""
    return json.dumps(
        {"tool_calls": [{"name": c.name, "arguments": arguments(c)} for c in calls]},
        ensure_ascii=False,
    )


def fold(messages: Sequence[Message], tools: Tools | None) -> tuple[Message, ...]:
    """A conversation with tools, for a model without tool tokens: the tools listed in a
    system message, earlier calls written as the JSON object it is asked for, and each
    run of tool results given back as one user message."""
    out: list[Message] = []
    if tools is not None and tools.callable:
        out.append(Message("system", f"{listing(tools)}\n\n{JSON_FORMAT}"))
    results: list[str] = []
    for m in messages:
        if m.role == "tool":
            results.append(f"Result of {m.name or 'the tool'}:\n{m.content}")
            continue
        if results:
            out.append(Message("user", "\n\n".join(results)))
            results = []
        if m.tool_calls:
            text = "\n\n".join(filter(None, [m.content, call_object(m.tool_calls)]))
            out.append(replace(m, content=text, tool_calls=()))
        else:
            out.append(m)
    if results:
        out.append(Message("user", "\n\n".join(results)))
    return tuple(out)


def calls_schema(tools: Tools) -> dict[str, Any]:
    """The JSON schema of a call object (the format without tool tokens)."""
    one = [
        {
            "type": "object",
            "properties": {"name": {"const": t.name}, "arguments": json.loads(t.parameters)},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for t in tools.callable
    ]
    calls: dict[str, Any] = {"type": "array", "items": {"anyOf": one}, "minItems": 1}
    if not tools.parallel:
        calls["maxItems"] = 1
    return {
        "type": "object",
        "properties": {"tool_calls": calls},
        "required": ["tool_calls"],
        "additionalProperties": False,
    }


class CallReader:
    """Reads an answer as it streams: text passes through (`feed` returns it), calls are
    taken out (`feed` returns them once whole). The first characters decide: DeepSeek's
    `<｜tool▁calls▁begin｜>` or a `{` starts calls; anything else is text."""

    def __init__(self) -> None:
        self._mode = ""  # "", "text", "markers", "json"
        self._held = ""
        self._calls = 0
        self.cut = False  # the answer ended inside a call (`finish`): it is not text

    def feed(self, text: str) -> tuple[str, list[ToolCall]]:
        if self._mode == "text":
            return text, []
        self._held += text
        if not self._mode:
            start = self._held.lstrip()
            if not start:
                return "", []
            if start.startswith(r1.CALLS_BEGIN):
                self._mode, self._held = "markers", start[len(r1.CALLS_BEGIN) :]
            elif start.startswith("{"):
                self._mode = "json"
            elif r1.CALLS_BEGIN.startswith(start):
                return "", []  # may yet be the marker
            else:
                self._mode = "text"
                held, self._held = self._held, ""
                return held, []
        if self._mode == "markers":
            return "", self._whole_marked_calls()
        return "", []

    def finish(self) -> tuple[str, list[ToolCall]]:
        """What is left at the end of the answer: text that turned out not to be calls,
        or the calls of a JSON object. A call the answer ended inside (`max_tokens` cut
        it) is neither: it is dropped, and `cut` says so."""
        if self._mode == "json":
            held, self._held = self._held, ""
            calls = _json_calls(held)
            self._calls += len(calls)
            if calls or not _unfinished_call(held):
                return ("" if calls else held), calls
            self.cut = True
            return "", []
        if self._mode == "markers":
            calls = self._whole_marked_calls()
            held, self._held = self._held, ""
            self.cut = bool(held.replace(r1.CALLS_END, "").strip())
            return "", calls
        held, self._held = self._held, ""
        return held, []

    @property
    def called(self) -> bool:
        return self._calls > 0

    def _whole_marked_calls(self) -> list[ToolCall]:
        out = []
        while (end := self._held.find(r1.CALL_END)) != -1:
            body, self._held = self._held[:end], self._held[end + len(r1.CALL_END) :]
            if (call := _marked_call(body)) is not None:
                out.append(call)
        self._calls += len(out)
        return out


def _marked_call(body: str) -> ToolCall | None:
    """`<｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\\n```json\\nARGS\\n```` as a call."""
    _, _, rest = body.partition(r1.CALL_BEGIN)
    _, sep, rest = rest.partition(r1.TOOL_SEP)
    if not sep:
        return None
    name, _, args = rest.partition("\n")
    args = args.strip()
    args = args.removeprefix("```json").removeprefix("```").removesuffix("```").strip()
    return ToolCall.new(name.strip(), args or "{}")


def _unfinished_call(text: str) -> bool:
    """Whether `text` is a JSON tool call the answer ended inside."""
    try:
        json.loads(text)
    except ValueError:
        return '"tool_calls"' in text
    return False


def _json_calls(text: str) -> list[ToolCall]:
    try:
        value = json.loads(text)
    except ValueError:
        return []
    calls = value.get("tool_calls") if isinstance(value, dict) else None
    if not isinstance(calls, list) or not calls:
        return []
    out = []
    for c in calls:
        if not isinstance(c, dict) or not isinstance(c.get("name"), str):
            return []
        out.append(ToolCall.new(c["name"], c.get("arguments", {})))
    return out


def arguments(call: ToolCall) -> Any:
    """A call's arguments as a JSON value (the text itself if it is not JSON)."""
    try:
        return json.loads(call.arguments)
    except ValueError:
        return call.arguments
