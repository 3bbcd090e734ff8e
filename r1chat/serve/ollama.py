"""Ollama's API on `r1chat serve`'s port: its request bodies as a `Call`, and its answers
(NDJSON streams, `{"error": ...}` bodies) from a reply's events.

Field names and shapes follow Ollama's `docs/api.md` as of Ollama 0.12 (the version
`/api/version` reports). What r1chat adds stays in Ollama's fields: `think` ("low",
"medium", "high") is a real thinking budget, and the reasoning is always in
`message.thinking` (`thinking` for /api/generate), never in the answer. Fields r1chat
cannot honour are refused with a 400 naming them, never ignored.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from r1chat.config.schema import SAMPLING
from r1chat.config.settings import Settings
from r1chat.core.events import Done
from r1chat.core.messages import ToolCall
from r1chat.core.tools import arguments
from r1chat.core.units import duration
from r1chat.serve.fields import BadRequest
from r1chat.serve.replies import FINISH, Reply, Text, json_line
from r1chat.serve.requests import (
    EFFORT_BUDGETS,
    Call,
    effort_of,
    parse_chat,
    parse_completion,
)

VERSION = "0.12.0"
"""The Ollama API version whose shapes r1chat follows (clients gate features on it)."""

_CHAT_KEYS = {"model", "messages", "stream", "think", "options", "keep_alive", "format", "tools"}
_GENERATE_KEYS = {
    *(_CHAT_KEYS - {"messages", "tools"}),
    "prompt",
    "system",
    "raw",
    "suffix",
    "template",
    "context",
    "images",
}
_OPTIONS = {
    "num_predict": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "seed": "seed",
}


def parse_chat_body(body: Any, settings: Settings, n_ctx: int) -> tuple[Call, float | None]:
    """A `/api/chat` body: the call and its `keep_alive` in seconds (None: not given;
    negative: keep the model loaded)."""
    body = _present(body, _CHAT_KEYS)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty array", "messages")
    openai: dict[str, Any] = {"messages": [_message(m, i) for i, m in enumerate(messages)]}
    if body.get("tools"):
        openai["tools"] = body["tools"]  # the same shape as OpenAI's
    return _call(body, openai, settings, n_ctx, parse_chat)


def parse_generate_body(body: Any, settings: Settings, n_ctx: int) -> tuple[Call, float | None]:
    """A `/api/generate` body (`raw`: the prompt is continued as written)."""
    body = _present(body, _GENERATE_KEYS)
    for key in ("suffix", "template", "context", "images"):
        if body.get(key):
            raise BadRequest(f"{key} is not supported by r1chat serve", key)
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise BadRequest("prompt must be a non-empty string", "prompt")
    raw = body.get("raw", False)
    if not isinstance(raw, bool):
        raise BadRequest("raw must be true or false", "raw")
    if raw:
        if body.get("think") is not None or body.get("system"):
            raise BadRequest("raw prompts take no think or system", "raw")
        return _call(body, {"prompt": prompt}, settings, n_ctx, parse_completion)
    system = body.get("system")
    if system is not None and not isinstance(system, str):
        raise BadRequest("system must be a string", "system")
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    return _call(body, {"messages": messages}, settings, n_ctx, parse_chat)


def _present(body: Any, known: set[str]) -> dict[str, Any]:
    """The body's fields that are set (clients send unset ones as null); unknown ones
    are refused."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    body = {k: v for k, v in body.items() if v is not None}
    if unknown := sorted(set(body) - known):
        raise BadRequest(f"{unknown[0]} is not supported by r1chat serve", unknown[0])
    return body


def _message(m: Any, i: int) -> dict[str, Any]:
    where = f"messages[{i}]"
    if not isinstance(m, dict):
        raise BadRequest(f"{where} must be an object", where)
    if m.get("images"):
        raise BadRequest(f"{where}.images: R1 reads text only", f"{where}.images")
    # an earlier answer's `thinking` is not sent back to the model, as R1's template does
    out = {"role": m.get("role"), "content": m.get("content")}
    if m.get("role") == "tool":
        out["name"] = m.get("tool_name") or m.get("name")
    if calls := m.get("tool_calls"):
        if not isinstance(calls, list):
            raise BadRequest(f"{where}.tool_calls must be an array", f"{where}.tool_calls")
        out["tool_calls"] = [
            {"type": "function", "function": c.get("function") if isinstance(c, dict) else c}
            for c in calls
        ]
    return out


def _call(
    body: dict[str, Any],
    openai: dict[str, Any],
    settings: Settings,
    n_ctx: int,
    parse: Any,
) -> tuple[Call, float | None]:
    openai.update(model=body.get("model"), stream=body.get("stream", True))
    fmt = body.get("format")
    if fmt == "json":
        openai["response_format"] = {"type": "json_object"}
    elif isinstance(fmt, dict):
        openai["response_format"] = {"type": "json_schema", "json_schema": {"schema": fmt}}
    elif fmt not in (None, ""):
        raise BadRequest('format must be "json" or a JSON schema (an object)', "format")
    options = _options(body.get("options"), n_ctx)
    openai.update({k: v for k, v in options.items() if k != "stop"})
    if "stop" in options:
        openai["stop"] = options["stop"]
    call: Call = parse(openai, settings)
    if call.chat:
        call = _thinking(call, body.get("think"))
    return call, keep_alive(body.get("keep_alive"))


def _options(value: Any, n_ctx: int) -> dict[str, Any]:
    """Ollama's `options` as OpenAI's sampling fields; each is checked under its own name."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("options must be an object", "options")
    out: dict[str, Any] = {}
    for key, v in value.items():
        name = f"options.{key}"
        if v is None:
            continue
        if key == "num_ctx":
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise BadRequest(f"{name} must be a whole number", name)
            if v > n_ctx:
                raise BadRequest(
                    f"{name} {v:,} is over this server's context of {n_ctx:,} "
                    "(start it with a larger --ctx)",
                    name,
                )
            continue  # the reply fits the server's context, at least as large
        if key == "stop":
            out["stop"] = v
            continue
        if key not in _OPTIONS:
            known = ", ".join(["num_ctx", "stop", *_OPTIONS])
            raise BadRequest(f"{name} is not supported by r1chat serve (known: {known})", name)
        if key == "num_predict" and isinstance(v, int) and v < 0:
            continue  # -1: no limit, -2: until the context is full (the same here)
        rule = SAMPLING[_OPTIONS[key]]
        if (problem := rule.problem(v)) is not None:
            raise BadRequest(f"{name} {problem}", name)
        out[_OPTIONS[key]] = v
    return out


def _thinking(call: Call, think: Any) -> Call:
    """Ollama's `think`: true, false, or an effort ("low", "medium", "high")."""
    if think is None:
        return call
    guards, request = call.guards, call.request
    if isinstance(think, bool):
        return replace(call, request=replace(request, think=think))
    effort = effort_of(think, "think")
    return replace(
        call,
        request=replace(request, think=effort != "none"),
        guards=replace(guards, think_budget=EFFORT_BUDGETS.get(effort)),
    )


def keep_alive(value: Any) -> float | None:
    """Ollama's `keep_alive` in seconds: a number of seconds or a duration ("5m", "30s",
    "1h"); negative keeps the model loaded; 0 unloads it after the reply."""
    if value is None:
        return None
    if (seconds := duration(value)) is not None:
        return seconds
    raise BadRequest(
        f"keep_alive must be a duration like 5m, 30s or -1, not {value!r}", "keep_alive"
    )


def error_body(e: BadRequest) -> dict[str, Any]:
    """An error in Ollama's shape."""
    return {"error": e.message}


class OllamaReply(Reply):
    """A reply in Ollama's shape: NDJSON objects, `done` on the last one with its counts
    and durations (nanoseconds)."""

    media_type = "application/x-ndjson"
    end = b""
    waiting = b""  # NDJSON has no comments

    def __init__(self, call: Call, model: str, on_stop: Any, *, chat: bool) -> None:
        super().__init__(call, model, on_stop)
        self.api_chat = chat  # /api/chat (else /api/generate)
        now = time.time()
        self.created_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + (
            f".{int(now % 1 * 1e6):06d}Z"
        )

    def frame(self, obj: dict[str, Any]) -> bytes:
        return json_line(obj)

    def error(self, e: BadRequest) -> dict[str, Any]:
        return error_body(e)

    def first(self) -> list[dict[str, Any]]:
        return []

    def chunk(self, piece: Text) -> dict[str, Any]:
        field, text = piece
        if field == "tool_calls":
            return self._object({"content": ""}, calls=self.calls[-len(text) :])
        return self._object({"thinking" if field == "reasoning_content" else "content": text})

    def last(self, done: Done) -> list[dict[str, Any]]:
        out = [self.chunk(p) for p in self._answer(self._stops.flush(), final=True)]
        out.append(self._final(done, {}))
        return out

    def whole(self, done: Done) -> dict[str, Any]:
        self._answer(self._stops.flush(), final=True)
        fields = {"content": "".join(self.content)}
        if self.reasoning:
            fields["thinking"] = "".join(self.reasoning)
        return self._final(done, fields, self.calls)

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
            "done_reason": "stop" if self.stopped else FINISH.get(done.finish_reason, "stop"),
            "total_duration": int(s.total_s * ns),
            "load_duration": 0,
            "prompt_eval_count": s.prompt_tokens,
            "prompt_eval_duration": int(first * ns),
            "eval_count": s.thinking_tokens + s.answer_tokens,
            "eval_duration": int(max(0.0, s.total_s - first) * ns),
            "r1chat": self.extension(done),
        }
