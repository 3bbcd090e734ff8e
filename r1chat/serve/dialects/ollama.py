"""Ollama's `/api/chat` and `/api/generate`: request bodies as a `Call`, replies as NDJSON
objects (`done` on the last, with its counts and durations in nanoseconds), errors as
`{"error": ...}`.

Field names and shapes follow Ollama's `docs/api.md` as of the version `VERSION` names.
What r1chat adds stays in Ollama's fields: `think` ("low", "medium", "high") is a real
thinking budget, and the reasoning is always in `message.thinking` (`thinking` for
/api/generate), never in the answer. Fields r1chat cannot honour are refused with a 400
naming them, never ignored.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from r1chat.config.settings import Settings
from r1chat.core.events import Done
from r1chat.core.messages import Message, ToolCall
from r1chat.core.request import Request
from r1chat.core.tools import arguments
from r1chat.core.units import duration
from r1chat.host.outcomes import Rendered
from r1chat.serve.call import (
    JSON_OBJECT,
    RAW_GUARDS,
    Call,
    answer_only,
    effort_of,
    model_field,
    reasoning_of,
    sampling_of,
    schema_text,
    stops_of,
)
from r1chat.serve.dialects.base import Dialect, Template, json_line, prompt_object
from r1chat.serve.errors import ApiError
from r1chat.serve.fields import body_object, boolean_field, text_field
from r1chat.serve.reply import CALLS, REASONING, TEXT, Piece, ReplyState
from r1chat.serve.tool_fields import calls_of, offered_tools

VERSION = "0.13.5"
"""The Ollama version whose API r1chat serves (clients gate features on it): `/api/*` as
its docs describe, OpenAI's `/v1/chat/completions` and `/v1/responses` (added in 0.13.4:
Codex's `--oss` asks for it); Anthropic's `/v1/messages` too, which Ollama added later.
Fields of later versions are refused by name, never ignored."""

_CHAT_KEYS = {"model", "messages", "stream", "think", "options", "keep_alive", "format", "tools"}
_GENERATE_KEYS = {
    *(_CHAT_KEYS - {"messages", "tools"}),
    *("prompt", "system", "raw", "suffix", "template", "context", "images"),
}
_OPTIONS = {
    "num_predict": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "seed": "seed",
}
"""Ollama's sampling options, as the config's keys."""


def error_body(e: ApiError) -> dict[str, Any]:
    """An error in Ollama's shape."""
    return {"error": e.message}


# -- requests ---------------------------------------------------------------------------


def parse_chat_body(body: Any, settings: Settings) -> Call:
    """A `/api/chat` body."""
    body = _present(body, _CHAT_KEYS)
    value = body.get("messages")
    if not isinstance(value, list) or not value:
        raise ApiError("messages must be a non-empty array", "messages")
    messages = tuple(_message(m, i) for i, m in enumerate(value))
    if messages[-1].role not in ("user", "tool"):
        raise ApiError(
            "the last message must be the user's or a tool's result",
            f"messages[{len(messages) - 1}].role",
        )
    tools = offered_tools({"tools": body["tools"]}) if body.get("tools") else None
    return _chat(body, messages, settings, tools)


def parse_generate_body(body: Any, settings: Settings) -> Call:
    """A `/api/generate` body (`raw`: the prompt is continued as written)."""
    body = _present(body, _GENERATE_KEYS)
    for key in ("suffix", "template", "context", "images"):
        if body.get(key):
            raise ApiError(f"{key} is not supported by r1chat serve", key)
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise ApiError("prompt must be a non-empty string", "prompt")
    system = text_field(body, "system", "system")
    if boolean_field(body, "raw", False, "raw"):
        if body.get("think") is not None or system:
            raise ApiError("raw prompts take no think or system", "raw")
        request = Request(messages=(), sampling=_sampling(body, settings))
        call = Call(model_field(body), request, RAW_GUARDS, _stream(body), prompt=prompt)
        alive = keep_alive(body.get("keep_alive"))
        return replace(call, stop=_stop(body), keep_alive=alive, context=_context(body))
    messages = (Message("system", system),) if system else ()
    return _chat(body, (*messages, Message("user", prompt)), settings, None)


def _chat(
    body: dict[str, Any],
    messages: tuple[Message, ...],
    settings: Settings,
    tools: Any,
) -> Call:
    switches: dict[str, Any] = {}
    think = body.get("think")
    if isinstance(think, bool):
        switches["think"] = think
    elif think is not None:
        switches["effort"] = effort_of(think, "think")
    guards, reasoning = reasoning_of(switches, settings)
    request = Request(
        messages=messages,
        sampling=_sampling(body, settings),
        system=settings.system,
        think=reasoning,
        math=settings.math,
        tools=tools,
    )
    call = Call(model_field(body), request, guards, _stream(body), stop=_stop(body))
    return replace(call, keep_alive=keep_alive(body.get("keep_alive")), context=_context(body))


def _present(body: Any, known: set[str]) -> dict[str, Any]:
    """The body's fields that are set (clients send unset ones as null); unknown ones
    are refused."""
    body = {k: v for k, v in body_object(body).items() if v is not None}
    if unknown := sorted(set(body) - known):
        raise ApiError(f"{unknown[0]} is not supported by r1chat serve", unknown[0])
    return body


def _stream(body: dict[str, Any]) -> bool:
    return boolean_field(body, "stream", True, "stream")


def _message(m: Any, i: int) -> Message:
    """One message; an earlier answer's `thinking` is not sent back to the model, as R1's
    template does."""
    where = f"messages[{i}]"
    if not isinstance(m, dict):
        raise ApiError(f"{where} must be an object", where)
    if m.get("images"):
        raise ApiError(f"{where}.images: R1 reads text only", f"{where}.images")
    role = m.get("role")
    if role not in ("system", "user", "assistant", "tool"):
        raise ApiError(
            f"{where}.role must be system, user, assistant or tool, not {role!r}",
            f"{where}.role",
        )
    content = m.get("content")
    if content is not None and not isinstance(content, str):
        raise ApiError(f"{where}.content must be a string", f"{where}.content")
    text = content or ""
    if role == "tool":
        name = m.get("tool_name") or m.get("name") or ""
        return Message("tool", text, name=name if isinstance(name, str) else "")
    if role == "assistant":
        given = m.get("tool_calls")
        if given is not None and not isinstance(given, list):
            raise ApiError(f"{where}.tool_calls must be an array", f"{where}.tool_calls")
        functions = [
            {"function": c.get("function") if isinstance(c, dict) else c} for c in given or []
        ]
        calls = calls_of(functions, f"{where}.tool_calls")
        return Message("assistant", answer_only(text), tool_calls=calls)
    return Message(role, text)


def _sampling(body: dict[str, Any], settings: Settings) -> Any:
    """`options` and `format` over the server's sampling; each option is checked under its
    own name."""
    options = body.get("options")
    values: dict[str, Any] = {}
    if options is not None:
        if not isinstance(options, dict):
            raise ApiError("options must be an object", "options")
        for key, v in options.items():
            name = f"options.{key}"
            if v is None or key in ("stop", "num_ctx"):
                continue
            if key not in _OPTIONS:
                known = ", ".join(["num_ctx", "stop", *_OPTIONS])
                raise ApiError(f"{name} is not supported by r1chat serve (known: {known})", name)
            elif key == "num_predict" and v in (-1, -2):
                continue  # -1: no limit, -2: until the context is full (the same here)
            else:
                values[_OPTIONS[key]] = v
    names = {config: f"options.{key}" for key, config in _OPTIONS.items()}
    sampling = sampling_of(values, settings.sampling, names)
    return replace(sampling, schema=_schema(body.get("format")))


def _context(body: dict[str, Any]) -> int | None:
    """`options.num_ctx`: the context the client wants (the server grows its own to it
    when it is larger, where the machine fits it)."""
    options = body.get("options")
    value = options.get("num_ctx") if isinstance(options, dict) else None
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ApiError("options.num_ctx must be a whole number", "options.num_ctx")
    return value


def _stop(body: dict[str, Any]) -> tuple[str, ...]:
    options = body.get("options")
    return stops_of(options.get("stop"), "options.stop") if isinstance(options, dict) else ()


def _schema(fmt: Any) -> str | None:
    if fmt in (None, ""):
        return None
    if fmt == "json":
        return JSON_OBJECT
    if isinstance(fmt, dict):
        return schema_text(fmt, "format")
    raise ApiError('format must be "json" or a JSON schema (an object)', "format")


def keep_alive(value: Any) -> float | None:
    """Ollama's `keep_alive` in seconds: a number of seconds or a duration ("5m", "30s",
    "1h"); negative keeps the model loaded; 0 unloads it after the reply; None: not given."""
    if value is None:
        return None
    if (seconds := duration(value)) is not None:
        return seconds
    raise ApiError(f"keep_alive must be a duration like 5m, 30s or -1, not {value!r}", "keep_alive")


# -- replies ----------------------------------------------------------------------------


class _Writer:
    """NDJSON objects; `/api/chat` puts the text in `message`, `/api/generate` at the top."""

    media_type = "application/x-ndjson"
    waiting = b""  # NDJSON has no comments
    api_chat = True

    def __init__(self, state: ReplyState, model: str) -> None:
        self.state, self.model = state, model
        now = time.time()
        self.created_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + (
            f".{int(now % 1 * 1e6):06d}Z"
        )
        self._frames = {
            REASONING: Template(lambda text: json_line(self._object({"thinking": text}))),
            TEXT: Template(lambda text: json_line(self._object({"content": text}))),
        }

    def opening(self) -> bytes:
        return b""

    def pieces(self, pieces: list[Piece]) -> bytes:
        return b"".join(self._frame(p) for p in pieces)

    def closing(self, done: Done) -> bytes:
        out = [self._frame(p) for p in self.state.flush()]
        return b"".join([*out, json_line(self._final(done, {}))])

    def failure(self, error: ApiError) -> bytes:
        return json_line(error_body(error))

    def whole(self, done: Done) -> dict[str, Any]:
        state = self.state
        state.flush()
        fields = {"content": "".join(state.content)}
        if state.reasoning:
            fields["thinking"] = "".join(state.reasoning)
        return self._final(done, fields, state.calls)

    def rendered(self, prompt: Rendered) -> dict[str, Any]:
        return prompt_object(self.model, prompt)

    def _frame(self, piece: Piece) -> bytes:
        kind, value = piece
        if kind == CALLS:
            return json_line(self._object({"content": ""}, calls=value))
        return self._frames[kind](value)

    def _object(
        self, fields: dict[str, str], done: bool = False, calls: list[ToolCall] | None = None
    ) -> dict[str, Any]:
        head: dict[str, Any] = {"model": self.model, "created_at": self.created_at}
        if self.api_chat:
            message: dict[str, Any] = {"role": "assistant", "content": fields.get("content", "")}
            if "thinking" in fields:
                message["thinking"] = fields["thinking"]
            if calls:
                message["tool_calls"] = [
                    {"function": {"name": c.name, "arguments": arguments(c)}} for c in calls
                ]
            return {**head, "message": message, "done": done}
        out = {**head, "response": fields.get("content", "")}
        if "thinking" in fields:
            out["thinking"] = fields["thinking"]
        return {**out, "done": done}

    def _final(
        self, done: Done, fields: dict[str, str], calls: list[ToolCall] | None = None
    ) -> dict[str, Any]:
        s = done.stats
        ns = 1_000_000_000
        first = s.time_to_first_token_s
        return {
            **self._object(fields, done=True, calls=calls),
            "done_reason": "length" if self.state.finish(done) == "length" else "stop",
            "total_duration": int(s.total_s * ns),
            "load_duration": 0,
            "prompt_eval_count": s.prompt_tokens,
            "prompt_eval_duration": int(first * ns),
            "eval_count": s.thinking_tokens + s.answer_tokens,
            "eval_duration": int(max(0.0, s.total_s - first) * ns),
            "r1chat": self.state.extension(done),
        }


class ChatWriter(_Writer):
    """`/api/chat`'s reply."""


class GenerateWriter(_Writer):
    """`/api/generate`'s reply."""

    api_chat = False


CHAT = Dialect(parse_chat_body, ChatWriter, error_body)
GENERATE = Dialect(parse_generate_body, GenerateWriter, error_body)
