"""Anthropic's Messages API (`/v1/messages`, `/v1/messages/count_tokens`): request bodies as
a `Call`, replies as a `message` with `thinking`, `text` and `tool_use` blocks, streamed
as Anthropic's events, errors in its shape.

For R1, as Anthropic's own models: the reasoning is a `thinking` block before the answer
(with a `signature`, which clients send back and r1chat drops: an R1 model never reads
its earlier reasoning), `thinking: {"type": "enabled", "budget_tokens": N}` is a real
thinking budget and `disabled` answers without reasoning, `output_config.effort` is an
effort's budget. Claude Code's attribution line (`x-anthropic-billing-header: ...`, which
changes every request) is left out of the system prompt, so the prompt cache holds.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import replace
from typing import Any

from r1chat.config.settings import Settings
from r1chat.core.events import Done
from r1chat.core.messages import Message, ToolCall
from r1chat.core.request import Request
from r1chat.core.tools import Tool, Tools, arguments
from r1chat.host.outcomes import Rendered
from r1chat.serve.call import (
    Call,
    budget_of,
    effort_of,
    model_field,
    reasoning_of,
    sampling_of,
    schema_text,
    stops_of,
)
from r1chat.serve.dialects.base import Dialect, sse
from r1chat.serve.errors import ApiError
from r1chat.serve.fields import body_object, boolean_field, object_field
from r1chat.serve.reply import CALLS, REASONING, TEXT, Piece, ReplyState
from r1chat.serve.tool_fields import function_tool, tool_list

_KNOWN = {
    *("model", "max_tokens", "messages", "system", "stop_sequences", "stream"),
    *("temperature", "top_p", "top_k", "tools", "tool_choice", "thinking"),
    *("output_config", "output_format", "context_management"),
}
_ABOUT_THE_REQUEST = {"metadata", "service_tier"}
_BILLING = "x-anthropic-billing-header:"
"""Claude Code's attribution line: a per-request checksum at the head of the system
prompt, for Anthropic's servers only (llama.cpp#19494)."""

STOP_REASONS = {
    "stop": "end_turn",
    "loop": "end_turn",
    "length": "max_tokens",
    "stop_string": "stop_sequence",
    "tool_calls": "tool_use",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
}


def error_body(e: ApiError) -> dict[str, Any]:
    """An error in Anthropic's shape (a prompt over the context worded as Anthropic's, which
    Claude Code reads to compact the conversation)."""
    kind = _ERROR_TYPES.get(e.status, "api_error" if e.status >= 500 else "invalid_request_error")
    message = e.message
    if e.code == "context_length_exceeded":
        message = f"prompt is too long: {message}"
    return {"type": "error", "error": {"type": kind, "message": message}}


# -- requests ---------------------------------------------------------------------------


def parse_messages(body: Any, settings: Settings) -> Call:
    """A `/v1/messages` body."""
    body = body_object(body)
    _refuse_unknown(body)
    tokens = body.get("max_tokens")
    if tokens is None:
        raise ApiError("max_tokens: field required", "max_tokens")
    return _call(body, settings, {"max_tokens": tokens}, stream=_stream(body))


def parse_count(body: Any, settings: Settings) -> Call:
    """A `/v1/messages/count_tokens` body: the prompt is rendered, not answered."""
    body = body_object(body)
    _refuse_unknown(body)
    return replace(_call(body, settings, {}, stream=False), dry_run=True)


def _refuse_unknown(body: dict[str, Any]) -> None:
    for key, value in body.items():
        if value is not None and key not in _KNOWN and key not in _ABOUT_THE_REQUEST:
            raise ApiError(f"{key}: Extra inputs are not permitted by r1chat serve", key)


def _stream(body: dict[str, Any]) -> bool:
    return boolean_field(body, "stream", False, "stream")


def _call(
    body: dict[str, Any], settings: Settings, values: dict[str, Any], *, stream: bool
) -> Call:
    model = model_field(body)
    if model is None:
        raise ApiError("model: field required", "model")
    values.update({k: body.get(k) for k in ("temperature", "top_p", "top_k")})
    sampling = sampling_of(values, settings.sampling)
    sampling = replace(sampling, schema=_output_schema(body.get("output_format")))
    guards, think = reasoning_of(_switches(body), settings)
    _context_management(body.get("context_management"))
    tools = _tools(body)
    if tools is not None and tools.callable and sampling.schema is not None:
        raise ApiError(
            "output_format cannot hold an answer that may call tools: use one or the other",
            "output_format",
        )
    messages = (*_system(body.get("system")), *_messages(body.get("messages")))
    request = Request(
        messages=messages,
        sampling=sampling,
        system=settings.system,
        think=think,
        math=settings.math,
        tools=tools,
    )
    stop = stops_of(body.get("stop_sequences"), "stop_sequences")
    return Call(model, request, guards, stream, stop=stop)


def _switches(body: dict[str, Any]) -> dict[str, Any]:
    """`thinking` and `output_config.effort` as reasoning switches."""
    out: dict[str, Any] = {}
    thinking = body.get("thinking")
    if thinking is not None:
        table = object_field(thinking, "thinking", {"type", "budget_tokens", "display"})
        kind = table.get("type")
        if kind not in ("enabled", "disabled", "adaptive"):
            raise ApiError(
                f"thinking.type must be enabled, disabled or adaptive, not {kind!r}",
                "thinking.type",
            )
        out["think"] = kind != "disabled"  # adaptive: R1 decides how long it reasons
        if kind == "enabled":
            if table.get("budget_tokens") is None:
                raise ApiError("thinking.budget_tokens: field required", "thinking.budget_tokens")
            out["budget"] = budget_of(table["budget_tokens"], "thinking.budget_tokens")
    config = body.get("output_config")
    if config is not None:
        effort = object_field(config, "output_config", {"effort"}).get("effort")
        if effort is not None:
            out["effort"] = effort_of(effort, "output_config.effort")
    return out


def _context_management(value: Any) -> None:
    """Only clearing earlier thinking is known, and an R1 model never re-reads it anyway."""
    if value is None:
        return
    edits = object_field(value, "context_management", {"edits"}).get("edits") or []
    if not isinstance(edits, list):
        raise ApiError("context_management.edits must be an array", "context_management.edits")
    for i, edit in enumerate(edits):
        kind = edit.get("type") if isinstance(edit, dict) else None
        if not (isinstance(kind, str) and kind.startswith("clear_thinking")):
            where = f"context_management.edits[{i}]"
            raise ApiError(
                f"{where}: only clear_thinking edits are supported by r1chat serve "
                "(an R1 model never re-reads earlier reasoning)",
                where,
            )


def _output_schema(value: Any) -> str | None:
    if value is None:
        return None
    table = object_field(value, "output_format", {"type", "schema"})
    if table.get("type") != "json_schema":
        raise ApiError("output_format.type must be json_schema", "output_format.type")
    return schema_text(table.get("schema"), "output_format.schema")


def _tools(body: dict[str, Any]) -> Tools | None:
    value, choice = body.get("tools"), body.get("tool_choice")
    if not value:
        if choice is not None and _choice_kind(choice) not in ("auto", "none"):
            raise ApiError("tool_choice needs tools to choose from", "tool_choice")
        return None
    offered = tool_list(value, _tool)
    if choice is None:
        return Tools(offered)
    kind = _choice_kind(choice)
    table = object_field(choice, "tool_choice", {"type", "name", "disable_parallel_tool_use"})
    parallel = not boolean_field(
        table, "disable_parallel_tool_use", False, "tool_choice.disable_parallel_tool_use"
    )
    if kind == "tool":
        name = table.get("name")
        if name not in [t.name for t in offered]:
            raise ApiError(f"tool_choice names {name!r}, which is not in tools", "tool_choice.name")
        return Tools(offered, str(name), parallel)
    return Tools(offered, {"any": "required"}.get(kind, kind), parallel)


def _choice_kind(choice: Any) -> str:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind not in ("auto", "any", "tool", "none"):
        raise ApiError("tool_choice.type must be auto, any, tool or none", "tool_choice.type")
    return str(kind)


def _tool(value: Any, where: str) -> Tool:
    """A client tool: `{name, description, input_schema}`; Anthropic's server tools (web
    search, code execution...) are not built here."""
    if not isinstance(value, dict):
        raise ApiError(f"{where} must be an object", where)
    kind = value.get("type")
    if kind not in (None, "custom"):
        raise ApiError(
            f"{where}: the {kind} tool runs on Anthropic's servers; r1chat serve offers "
            "only tools the client runs (name, description, input_schema)",
            where,
        )
    known = {"type", "name", "description", "input_schema", "cache_control"}
    return function_tool(object_field(value, where, known), where, schema_key="input_schema")


def _system(value: Any) -> tuple[Message, ...]:
    """The system prompt (a string or text blocks; Claude Code's attribution line left
    out) as a system message."""
    if value is None:
        return ()
    texts = [t for t in _texts(value, "system") if not t.startswith(_BILLING)]
    return (Message("system", "\n".join(texts)),) if texts else ()


def _texts(value: Any, where: str) -> list[str]:
    """A string, or text blocks."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise ApiError(f"{where} must be a string or an array of text blocks", where)
    out = []
    for i, block in enumerate(value):
        if not isinstance(block, dict) or block.get("type") != "text":
            kind = block.get("type") if isinstance(block, dict) else type(block).__name__
            raise ApiError(
                f"{where}[{i}]: only text is supported (R1 reads text), not {kind!r}",
                f"{where}[{i}]",
            )
        text = block.get("text")
        if not isinstance(text, str):
            raise ApiError(f"{where}[{i}].text must be a string", f"{where}[{i}].text")
        out.append(text)
    return out


def _messages(value: Any) -> list[Message]:
    """The conversation: text, `tool_use` in the assistant's turns and `tool_result` in the
    user's; `thinking` blocks sent back are dropped (R1 never re-reads its reasoning)."""
    if not isinstance(value, list) or not value:
        raise ApiError("messages: at least one message is required", "messages")
    out: list[Message] = []
    names: dict[str, str] = {}  # tool_use id -> the tool's name
    for i, m in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise ApiError(f"{where} must be an object", where)
        role = m.get("role")
        if role not in ("user", "assistant", "system"):
            raise ApiError(f"{where}.role must be user or assistant, not {role!r}", f"{where}.role")
        content = m.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list):
            raise ApiError(f"{where}.content must be a string or an array", f"{where}.content")
        out += _turn(role, blocks, f"{where}.content", names)
    spoken = [m for m in out if m.role != "system"]
    if not spoken or spoken[-1].role not in ("user", "tool"):
        raise ApiError(
            "the last message must be the user's (continuing an assistant's message is not "
            "supported)",
            f"messages[{len(value) - 1}].role",
        )
    return out


def _turn(role: str, blocks: list[Any], where: str, names: dict[str, str]) -> list[Message]:
    texts: list[str] = []
    calls: list[ToolCall] = []
    out: list[Message] = []
    for j, block in enumerate(blocks):
        at = f"{where}[{j}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind in ("thinking", "redacted_thinking") and role == "assistant":
            continue
        elif kind == "tool_use" and role == "assistant":
            call = _tool_use(block, at)
            names[call.id] = call.name
            calls.append(call)
        elif kind == "tool_result" and role == "user":
            if texts:  # text before a result stays before it
                out.append(Message("user", "\n".join(texts)))
                texts = []
            out.append(_tool_result(block, at, names))
        else:
            raise ApiError(
                f"{at}: {kind!r} is not supported here (R1 reads text, tool_use and tool_result)",
                at,
            )
    if role == "assistant":
        out.append(Message("assistant", "\n".join(texts), tool_calls=tuple(calls)))
    elif texts:
        out.append(Message("system" if role == "system" else "user", "\n".join(texts)))
    return out


def _tool_use(block: dict[str, Any], where: str) -> ToolCall:
    name, call_id, args = block.get("name"), block.get("id"), block.get("input", {})
    if not isinstance(name, str) or not isinstance(call_id, str) or not isinstance(args, dict):
        raise ApiError(f"{where}: a tool_use needs an id, a name and an input object", where)
    return replace(ToolCall.new(name, args), id=call_id)


def _tool_result(block: dict[str, Any], where: str, names: dict[str, str]) -> Message:
    call_id = block.get("tool_use_id")
    content = block.get("content", "")
    text = "\n".join(_texts(content, f"{where}.content")) if content else ""
    if block.get("is_error"):
        text = f"Error: {text}"
    name = names.get(call_id, "") if isinstance(call_id, str) else ""
    return Message("tool", text, name=name)


# -- replies ----------------------------------------------------------------------------


def usage(done: Done) -> dict[str, Any]:
    """A reply's tokens as Anthropic counts them (cache reads apart from the input)."""
    s = done.stats
    return {
        "input_tokens": s.prompt_tokens - s.cached_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": s.cached_tokens,
        "output_tokens": s.thinking_tokens + s.answer_tokens,
    }


def signature(thinking: str) -> str:
    """The `signature` a thinking block carries: opaque to clients, which send it back."""
    return "r1chat-" + hashlib.sha256(thinking.encode()).hexdigest()[:32]


def _event(kind: str, **fields: Any) -> bytes:
    return sse({"type": kind, **fields}, event=kind)


class MessagesWriter:
    """A `message`: whole, or as `message_start`, content blocks (`thinking`, `text`,
    `tool_use`) with their deltas, `message_delta` and `message_stop`."""

    media_type = "text/event-stream; charset=utf-8"
    waiting = _event("ping")

    def __init__(self, state: ReplyState, model: str) -> None:
        self.state, self.model = state, model
        self.id = "msg_" + uuid.uuid4().hex[:24]
        self._open: str | None = None  # the kind of the block streaming now
        self._index = -1

    def opening(self) -> bytes:
        message = {
            **self._head(),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return _event("message_start", message=message)

    def pieces(self, pieces: list[Piece]) -> bytes:
        out = []
        for kind, value in pieces:
            if kind == CALLS:
                out += [self._close(), *(self._tool_use(c) for c in value)]
                continue
            if self._open != kind:
                out.append(self._close())
                self._index += 1
                self._open = kind
                block = {"type": "thinking", "thinking": "", "signature": ""}
                if kind == TEXT:
                    block = {"type": "text", "text": ""}
                out.append(_event("content_block_start", index=self._index, content_block=block))
            delta = (
                {"type": "thinking_delta", "thinking": value}
                if kind == REASONING
                else {"type": "text_delta", "text": value}
            )
            out.append(_event("content_block_delta", index=self._index, delta=delta))
        return b"".join(out)

    def closing(self, done: Done) -> bytes:
        state = self.state
        out = [self.pieces(state.flush()), self._close()]
        delta = {"stop_reason": self._stop_reason(done), "stop_sequence": state.stop_string}
        out.append(_event("message_delta", delta=delta, usage=usage(done)))
        out.append(_event("message_stop", r1chat=state.extension(done)))
        return b"".join(out)

    def failure(self, error: ApiError) -> bytes:
        return _event("error", error=error_body(error)["error"])

    def whole(self, done: Done) -> dict[str, Any]:
        state = self.state
        state.flush()
        content: list[dict[str, Any]] = []
        if state.reasoning:
            thinking = "".join(state.reasoning)
            content.append(
                {"type": "thinking", "thinking": thinking, "signature": signature(thinking)}
            )
        if state.content:
            content.append({"type": "text", "text": "".join(state.content)})
        content += [_tool_use_block(c) for c in state.calls]
        return {
            **self._head(),
            "content": content,
            "stop_reason": self._stop_reason(done),
            "stop_sequence": state.stop_string,
            "usage": usage(done),
            "r1chat": state.extension(done),
        }

    def rendered(self, prompt: Rendered) -> dict[str, Any]:
        return {"input_tokens": prompt.count}

    def _head(self) -> dict[str, Any]:
        return {"id": self.id, "type": "message", "role": "assistant", "model": self.model}

    def _stop_reason(self, done: Done) -> str:
        return STOP_REASONS.get(self.state.finish(done), "end_turn")

    def _close(self) -> bytes:
        """End the block streaming now (a thinking block with its signature)."""
        if self._open is None:
            return b""
        out = b""
        if self._open == REASONING:
            delta = {
                "type": "signature_delta",
                "signature": signature("".join(self.state.reasoning)),
            }
            out = _event("content_block_delta", index=self._index, delta=delta)
        self._open = None
        return out + _event("content_block_stop", index=self._index)

    def _tool_use(self, call: ToolCall) -> bytes:
        self._index += 1
        block = {**_tool_use_block(call), "input": {}}
        delta = {"type": "input_json_delta", "partial_json": json.dumps(arguments(call))}
        return b"".join(
            [
                _event("content_block_start", index=self._index, content_block=block),
                _event("content_block_delta", index=self._index, delta=delta),
                _event("content_block_stop", index=self._index),
            ]
        )


def _tool_use_block(call: ToolCall) -> dict[str, Any]:
    call_id = call.id if call.id.startswith("toolu_") else "toolu_" + call.id.removeprefix("call_")
    return {"type": "tool_use", "id": call_id, "name": call.name, "input": arguments(call)}


MESSAGES = Dialect(parse_messages, MessagesWriter, error_body)
COUNT_TOKENS = Dialect(parse_count, MessagesWriter, error_body)
