"""A chat request's tools (`tools`, `tool_choice`, `parallel_tool_calls`) and an
earlier answer's `tool_calls`, checked field by field."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from r1chat.core.messages import ToolCall
from r1chat.core.tools import Tool, Tools
from r1chat.serve.call import schema_text
from r1chat.serve.errors import ApiError
from r1chat.serve.fields import boolean_field, object_field

_TOOL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_FUNCTION_KEYS = {"name", "description", "parameters", "strict"}


def offered_tools(body: dict[str, Any]) -> Tools | None:
    """OpenAI's chat `tools`, `tool_choice` and `parallel_tool_calls`, checked."""
    value, choice = body.get("tools"), body.get("tool_choice")
    parallel = boolean_field(body, "parallel_tool_calls", True, "parallel_tool_calls")
    if value is not None and not isinstance(value, list):
        raise ApiError("tools must be an array of functions", "tools")
    if not value:
        if choice not in (None, "none", "auto"):
            raise ApiError("tool_choice needs tools to choose from", "tool_choice")
        return None
    offered = tool_list(value, _chat_tool)
    return Tools(offered, _choice(choice, [t.name for t in offered]), parallel)


def tool_list(
    value: Any, read: Callable[[Any, str], Tool], name: str = "tools"
) -> tuple[Tool, ...]:
    """A request's tools, each read by `read(tool, "tools[i]")` (a dialect's shape)."""
    if not isinstance(value, list):
        raise ApiError(f"{name} must be an array of functions", name)
    offered = tuple(read(t, f"{name}[{i}]") for i, t in enumerate(value))
    names = [t.name for t in offered]
    if len(set(names)) < len(names):
        raise ApiError(f"{name}: two functions have the same name", name)
    return offered


def function_tool(
    spec: dict[str, Any], where: str, *, schema_key: str = "parameters", at: str = ""
) -> Tool:
    """A function from its name, description and arguments' schema (`spec[schema_key]`),
    whatever the dialect's shape; `at`: where in `where` they are (`.function`)."""
    name = spec.get("name")
    if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name):
        raise ApiError(
            f"{where}{at}.name must be 1 to 64 letters, digits, _, . or -", f"{where}{at}.name"
        )
    description = spec.get("description") or ""
    if not isinstance(description, str):
        raise ApiError(f"{where}{at}.description must be text", f"{where}{at}.description")
    params = spec.get(schema_key, {"type": "object", "properties": {}})
    return Tool(name, description, schema_text(params, f"{where}{at}.{schema_key}"))


def _chat_tool(value: Any, where: str) -> Tool:
    if not isinstance(value, dict) or value.get("type") != "function":
        raise ApiError(f'{where} must be {{"type": "function", "function": {{...}}}}', where)
    function = object_field(value.get("function"), f"{where}.function", _FUNCTION_KEYS)
    boolean_field(function, "strict", True, f"{where}.function.strict")  # always held to it
    return function_tool(function, where, at=".function")


def _choice(value: Any, names: list[str]) -> str:
    if value is None:
        return "auto"
    if value in ("auto", "none", "required"):
        return str(value)
    function = value.get("function") if isinstance(value, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str):
        raise ApiError(
            'tool_choice must be auto, none, required or {"type": "function", '
            '"function": {"name": ...}}',
            "tool_choice",
        )
    if name not in names:
        raise ApiError(f"tool_choice names {name!r}, which is not in tools", "tool_choice")
    return name


def calls_of(value: Any, where: str) -> tuple[ToolCall, ...]:
    """An earlier answer's `tool_calls`."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ApiError(f"{where} must be an array", where)
    out = []
    for i, c in enumerate(value):
        function = c.get("function") if isinstance(c, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        args = function.get("arguments", "{}") if isinstance(function, dict) else None
        if not isinstance(name, str) or not isinstance(args, str | dict):
            raise ApiError(
                f"{where}[{i}] must be a function call with a name and arguments",
                f"{where}[{i}]",
            )
        call_id = c.get("id")
        call = ToolCall.new(name, args)
        out.append(replace(call, id=call_id) if isinstance(call_id, str) else call)
    return tuple(out)
