"""OpenAI's Responses API (`/v1/responses`), what Codex and the `openai` client's
`responses.create` speak: request bodies as a `Call`, and the responses kept for
`previous_response_id` (`Store`). The reply's items and events are written by
`responses_writer.ResponsesWriter`.

`input` is a string or items: messages (`input_text`/`output_text` parts), an earlier
answer's `function_call`s and their `function_call_output`s; `reasoning` items sent back
(with their `encrypted_content`) are dropped, as an R1 model never re-reads its
reasoning. `reasoning.effort` is a thinking budget, `reasoning.summary` streams the
reasoning as summary text too, `text.format` holds the answer to a schema after the
reasoning, `truncation: "auto"` leaves out the oldest turns that do not fit. What is not
built (hosted tools, images, stored prompts, background runs) is a 400 naming it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace
from typing import Any

from r1chat.config.settings import Settings
from r1chat.core.messages import Message, ToolCall
from r1chat.core.request import Request
from r1chat.core.tools import Tool, Tools
from r1chat.serve.call import (
    JSON_OBJECT,
    Call,
    effort_of,
    model_field,
    reasoning_of,
    sampling_of,
    schema_text,
)
from r1chat.serve.errors import ApiError
from r1chat.serve.fields import body_object, boolean_field, object_field, text_field
from r1chat.serve.tool_fields import function_tool, tool_list

_KNOWN = {
    *("model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls"),
    *("text", "reasoning", "max_output_tokens", "temperature", "top_p", "stream"),
    *("store", "previous_response_id", "include", "truncation", "background", "top_logprobs"),
}
_ABOUT_THE_REQUEST = {
    *("metadata", "user", "prompt_cache_key", "safety_identifier", "service_tier"),
    "client_metadata",  # Codex's: who asks
}
INCLUDABLE = {"reasoning.encrypted_content"}
"""What `include` may ask for: the reasoning item's opaque `encrypted_content` (clients
send it back; r1chat drops it)."""
SUMMARIES = ("auto", "concise", "detailed")


class Store:
    """Responses kept (`store: true`) for `previous_response_id` and `GET
    /v1/responses/{id}`: the newest `limit`, in memory, for the server's life."""

    def __init__(self, limit: int = 256) -> None:
        self.limit = limit
        self._kept: OrderedDict[str, tuple[tuple[Message, ...], dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, response_id: str, conversation: tuple[Message, ...], obj: dict[str, Any]) -> None:
        """Keep a response: the conversation it ends (its answer last) and its object."""
        with self._lock:
            self._kept[response_id] = (conversation, obj)
            while len(self._kept) > self.limit:
                self._kept.popitem(last=False)

    def conversation(
        self, response_id: str, param: str = "previous_response_id"
    ) -> tuple[Message, ...]:
        return self._get(response_id, param)[0]

    def response(self, response_id: str) -> dict[str, Any]:
        return self._get(response_id, "id")[1]

    def delete(self, response_id: str) -> None:
        with self._lock:
            if self._kept.pop(response_id, None) is None:
                raise _not_found(response_id, "id")

    def _get(self, response_id: str, param: str) -> tuple[tuple[Message, ...], dict[str, Any]]:
        with self._lock:
            kept = self._kept.get(response_id)
        if kept is None:
            raise _not_found(response_id, param)
        return kept


def _not_found(response_id: str, param: str) -> ApiError:
    return ApiError(
        f"response {response_id!r} not found: this server keeps the newest responses made "
        "with store: true, for as long as it runs",
        param,
        status=404,
        code="previous_response_not_found" if param != "id" else "not_found",
    )


def parse_responses(body: Any, settings: Settings, store: Store) -> Call:
    """A `/v1/responses` body."""
    body = body_object(body)
    for key, value in body.items():
        if value is not None and key not in _KNOWN and key not in _ABOUT_THE_REQUEST:
            raise ApiError(f"{key} is not supported by r1chat serve", key)
    if body.get("background"):
        raise ApiError("background responses are not supported by r1chat serve", "background")
    if body.get("top_logprobs"):
        raise ApiError("top_logprobs: log probabilities are not supported", "top_logprobs")
    model = model_field(body)
    include = _include(body.get("include"))
    reasoning = _reasoning(body.get("reasoning"))
    guards, think = reasoning_of(reasoning["switches"], settings)
    values = {k: body.get(k) for k in ("temperature", "top_p")}
    values["max_tokens"] = body.get("max_output_tokens")
    sampling = sampling_of(values, settings.sampling, {"max_tokens": "max_output_tokens"})
    sampling = replace(sampling, schema=_text_format(body.get("text")))
    tools = _tools(body)
    if tools is not None and tools.callable and sampling.schema is not None:
        raise ApiError(
            "text.format cannot hold an answer that may call tools: use one or the other",
            "text.format",
        )
    earlier: tuple[Message, ...] = ()
    if (previous := text_field(body, "previous_response_id", "previous_response_id")) is not None:
        earlier = store.conversation(previous)
    messages = (*earlier, *_input(body.get("input"), earlier))
    instructions = text_field(body, "instructions", "instructions") or ""
    request = Request(
        messages=messages,
        sampling=sampling,
        system="\n\n".join(filter(None, [settings.system, instructions])),
        think=think,
        math=settings.math,
        tools=tools,
    )
    truncation = body.get("truncation") or "disabled"
    if truncation not in ("auto", "disabled"):
        raise ApiError(f"truncation must be auto or disabled, not {truncation!r}", "truncation")
    echo = {
        "instructions": instructions or None,
        "max_output_tokens": body.get("max_output_tokens"),
        "parallel_tool_calls": tools.parallel if tools is not None else True,
        "previous_response_id": previous,
        "reasoning": {"effort": reasoning["effort"], "summary": reasoning["summary"]},
        "store": boolean_field(body, "store", True, "store"),
        "temperature": sampling.temperature,
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": body.get("tools") or [],
        "top_p": sampling.top_p,
        "truncation": truncation,
        "metadata": body.get("metadata") or {},
        "include": include,
    }
    return Call(
        model,
        request,
        guards,
        boolean_field(body, "stream", False, "stream"),
        truncate=truncation == "auto",
        echo=echo,
    )


def _include(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError("include must be an array of strings", "include")
    for i, v in enumerate(value):
        if v not in INCLUDABLE:
            raise ApiError(
                f"include[{i}]: {v!r} is not supported by r1chat serve (only "
                f"{', '.join(sorted(INCLUDABLE))})",
                f"include[{i}]",
            )
    return list(value)


def _reasoning(value: Any) -> dict[str, Any]:
    """`reasoning`: its effort as switches, and the summary asked for."""
    out: dict[str, Any] = {"switches": {}, "effort": None, "summary": None}
    if value is None:
        return out
    table = object_field(value, "reasoning", {"effort", "summary", "generate_summary"})
    if (effort := table.get("effort")) is not None:
        out["effort"] = out["switches"]["effort"] = effort_of(effort, "reasoning.effort")
    summary = table.get("summary", table.get("generate_summary"))
    if summary is not None and summary not in SUMMARIES:
        raise ApiError(
            f"reasoning.summary must be one of {', '.join(SUMMARIES)}, not {summary!r}",
            "reasoning.summary",
        )
    out["summary"] = summary
    return out


def _text_format(value: Any) -> str | None:
    """`text.format` as the answer's schema (None: free text); `verbosity` at its default
    only (R1 is not tuned to it)."""
    if value is None:
        return None
    table = object_field(value, "text", {"format", "verbosity"})
    if table.get("verbosity") not in (None, "medium"):
        raise ApiError("text.verbosity: only medium is supported by r1chat serve", "text.verbosity")
    fmt = table.get("format")
    if fmt is None:
        return None
    keys = {"type", "name", "schema", "strict", "description"}
    kind = object_field(fmt, "text.format", keys).get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return JSON_OBJECT
    if kind != "json_schema":
        raise ApiError(
            f"text.format.type must be text, json_object or json_schema, not {kind!r}",
            "text.format.type",
        )
    return schema_text(fmt.get("schema"), "text.format.schema")


def _tools(body: dict[str, Any]) -> Tools | None:
    value, choice = body.get("tools"), body.get("tool_choice")
    parallel = boolean_field(body, "parallel_tool_calls", True, "parallel_tool_calls")
    if not value:
        if choice not in (None, "none", "auto"):
            raise ApiError("tool_choice needs tools to choose from", "tool_choice")
        return None
    offered = tool_list(value, _tool)
    if choice in (None, "auto", "none", "required"):
        return Tools(offered, choice or "auto", parallel)
    name = object_field(choice, "tool_choice", {"type", "name"}).get("name")
    if choice.get("type") != "function" or name not in [t.name for t in offered]:
        raise ApiError(
            'tool_choice must be auto, none, required or {"type": "function", "name": ...} '
            "naming one of tools",
            "tool_choice",
        )
    return Tools(offered, str(name), parallel)


def _tool(value: Any, where: str) -> Tool:
    """A function tool (`{type: "function", name, description, parameters, strict}`); the
    hosted tools (web search, file search, code interpreter...) are not built here."""
    kind = value.get("type") if isinstance(value, dict) else None
    if kind != "function":
        raise ApiError(
            f"{where}: {kind!r} tools are not supported by r1chat serve (only function "
            "tools, which the client runs)",
            where,
        )
    known = {"type", "name", "description", "parameters", "strict"}
    function = object_field(value, where, known)
    boolean_field(function, "strict", True, f"{where}.strict")  # always held to it
    return function_tool(function, where)


def _input(value: Any, earlier: tuple[Message, ...]) -> list[Message]:
    """`input`: a string (the user's message) or items."""
    if isinstance(value, str):
        return [Message("user", value)]
    if not isinstance(value, list) or not value:
        raise ApiError("input must be a string or a non-empty array of items", "input")
    out: list[Message] = []
    names = {c.id: c.name for m in earlier for c in m.tool_calls}  # call id -> tool
    for i, item in enumerate(value):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise ApiError(f"{where} must be an object", where)
        kind = item.get("type", "message")
        if kind == "message":
            out.append(_message(item, where))
        elif kind == "function_call":
            call = _function_call(item, where)
            names[call.id] = call.name
            if out and out[-1].role == "assistant":  # calls of one answer go together
                last = out.pop()
                out.append(replace(last, tool_calls=(*last.tool_calls, call)))
            else:
                out.append(Message("assistant", "", tool_calls=(call,)))
        elif kind == "function_call_output":
            call_id = item.get("call_id")
            output = item.get("output")
            text = (
                output if isinstance(output, str) else "\n".join(_parts(output, f"{where}.output"))
            )
            out.append(Message("tool", text, name=names.get(str(call_id), "")))
        elif kind != "reasoning":  # (reasoning sent back is dropped, as R1 needs)
            raise ApiError(f"{where}: {kind!r} items are not supported by r1chat serve", where)
    spoken = [m for m in out if m.role != "system"]
    if not spoken or spoken[-1].role not in ("user", "tool"):
        raise ApiError(
            "the last input item must be the user's message or a function_call_output",
            f"input[{len(value) - 1}]",
        )
    return out


def _message(item: dict[str, Any], where: str) -> Message:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise ApiError(
            f"{where}.role must be user, assistant, system or developer, not {role!r}",
            f"{where}.role",
        )
    content = item.get("content")
    text = content if isinstance(content, str) else "\n".join(_parts(content, f"{where}.content"))
    if role == "assistant":
        return Message("assistant", text)
    return Message("system" if role in ("system", "developer") else "user", text)


def _parts(value: Any, where: str) -> list[str]:
    """Text parts (`input_text`, `output_text`, `text`); images and files are refused."""
    if not isinstance(value, list):
        raise ApiError(f"{where} must be a string or an array of text parts", where)
    out = []
    for j, part in enumerate(value):
        kind = part.get("type") if isinstance(part, dict) else None
        text = part.get("text") if isinstance(part, dict) else None
        if kind not in ("input_text", "output_text", "text") or not isinstance(text, str):
            raise ApiError(
                f"{where}[{j}]: only text parts are supported (R1 reads text), not {kind!r}",
                f"{where}[{j}]",
            )
        out.append(text)
    return out


def _function_call(item: dict[str, Any], where: str) -> ToolCall:
    call_id, name, args = item.get("call_id"), item.get("name"), item.get("arguments", "{}")
    if not isinstance(call_id, str) or not isinstance(name, str) or not isinstance(args, str):
        raise ApiError(f"{where}: a function_call needs a call_id, a name and arguments", where)
    return replace(ToolCall.new(name, args), id=call_id)
