"""OpenAI's chat completions (`/v1/chat/completions`) and completions (`/v1/completions`):
request bodies as a `Call`, replies as OpenAI objects, streamed (SSE) or whole.

The reply's shape is DeepSeek's and vLLM's: reasoning in `reasoning_content`, the answer
in `content`, never mixed; `usage` counts reasoning tokens apart. The last chunk carries
an `r1chat` object too (`ReplyState.extension`). A field of the wrong type, one r1chat
cannot honour (`logprobs`) or does not know, is an `ApiError` naming it: never a reply
that ignores it. Fields about the request rather than the reply (`user`, `metadata`...)
pass, and OpenAI's and llama.cpp's knobs r1chat has no use for pass only at the value
that changes nothing (`frequency_penalty: 0`).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import replace
from typing import Any

from r1chat.config.settings import Settings
from r1chat.core.events import Done
from r1chat.core.messages import Message, ToolCall
from r1chat.core.request import Request
from r1chat.host.outcomes import Rendered
from r1chat.serve.call import (
    JSON_OBJECT,
    RAW_GUARDS,
    Call,
    answer_only,
    budget_of,
    model_field,
    reasoning_of,
    sampling_of,
    schema_text,
    stops_of,
    thinking_switches,
)
from r1chat.serve.dialects.base import Dialect, Template, prompt_object, sse
from r1chat.serve.errors import ApiError
from r1chat.serve.fields import body_object, boolean_field, object_field
from r1chat.serve.reply import CALLS, REASONING, TEXT, Piece, ReplyState
from r1chat.serve.tool_fields import calls_of, offered_tools

FINISH = {
    "stop": "stop",
    "length": "length",
    "loop": "stop",
    "stop_string": "stop",
    "tool_calls": "tool_calls",
}
"""How a reply ended (`ReplyState.finish`) as OpenAI's `finish_reason` (cancelled and
error never reach a client: the server answers with an error instead)."""

SSE_DONE = b"data: [DONE]\n\n"

_COMMON = {
    *("model", "temperature", "top_p", "top_k", "min_p", "max_tokens", "seed", "stop"),
    *("stream", "stream_options", "n", "r1chat", "response_format", "logprobs"),
    "top_logprobs",
}
_CHAT = {
    *_COMMON,
    *("messages", "max_completion_tokens", "reasoning_effort", "reasoning", "thinking"),
    *("chat_template_kwargs", "tools", "tool_choice", "parallel_tool_calls"),
}
_COMPLETION = {*_COMMON, "prompt", "tools", "tool_choice", "parallel_tool_calls"}
ABOUT_THE_REQUEST = {"user", "metadata", "store", "service_tier", "safety_identifier"}
ABOUT_THE_REQUEST |= {"prompt_cache_key", "id_slot"}
"""Fields about the request rather than the reply: they change nothing in it."""
_INERT: dict[str, tuple[Any, ...]] = {
    "frequency_penalty": (0,),
    "presence_penalty": (0,),
    "repeat_penalty": (1,),
    "repetition_penalty": (1,),
    "logit_bias": ({},),
    "modalities": (["text"],),
    "best_of": (1,),
    "echo": (False,),
    "ignore_eos": (False,),
    "n_probs": (0,),
    "cache_prompt": (True,),  # llama-server's: the cache is always reused here
    "reasoning_format": ("auto", "deepseek"),  # llama-server's: always so here
}
"""Fields clients send at their defaults, which change nothing in r1chat at these values
(any other value is refused)."""


# -- requests ---------------------------------------------------------------------------


def refuse_unknown(body: dict[str, Any], known: set[str], inert: dict[str, Any] = _INERT) -> None:
    """An `ApiError` for the first field that is not `known`, about the request, or inert
    at its value."""
    for key, value in body.items():
        if key in known or key in ABOUT_THE_REQUEST or value is None:
            continue
        if key in inert:
            if value in inert[key]:
                continue
            allowed = " or ".join(json.dumps(v) for v in inert[key])
            raise ApiError(f"{key} is not supported by r1chat serve (only {allowed})", key)
        raise ApiError(f"{key} is not supported by r1chat serve", key)


def parse_chat(body: Any, settings: Settings) -> Call:
    """A `/v1/chat/completions` body."""
    body = body_object(body)
    refuse_unknown(body, _CHAT)
    messages = chat_messages(body.get("messages"))
    ext = _extension(body)
    guards, think = reasoning_of(thinking_switches(body), settings)
    if "think_budget" in ext:
        value = ext["think_budget"]
        budget = None if value is None else budget_of(value, "r1chat.think_budget")
        guards = replace(guards, think_budget=budget)
    loop_guard = boolean_field(ext, "loop_guard", guards.loop_guard, "r1chat.loop_guard")
    guards = replace(guards, loop_guard=loop_guard)
    think = boolean_field(ext, "think", think, "r1chat.think")
    _refuse_unhonoured(body)
    sampling = replace(_sampling(body, settings), schema=answer_schema(body))
    tools = offered_tools(body)
    if tools is not None and tools.callable and sampling.schema is not None:
        raise ApiError(
            "response_format cannot hold an answer that may call tools: use one or the other",
            "response_format",
        )
    request = Request(
        messages=messages,
        sampling=sampling,
        system=settings.system,
        think=think,
        math=boolean_field(ext, "math", settings.math, "r1chat.math"),
        tools=tools,
    )
    call = _call(body, request, guards)
    dry_run = boolean_field(ext, "dry_run", False, "r1chat.dry_run")
    if dry_run and call.stream:
        raise ApiError("r1chat.dry_run needs stream: false", "r1chat.dry_run")
    return replace(call, dry_run=dry_run, show_reasoning=not _excluded(body))


def parse_completion(body: Any, settings: Settings) -> Call:
    """A `/v1/completions` body: the prompt is the client's, markup and all; no guards
    (the reply is not split into reasoning and answer)."""
    body = body_object(body)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise ApiError("prompt must be a non-empty string", "prompt")
    if "r1chat" in body and _extension(body).get("dry_run"):
        raise ApiError("r1chat.dry_run is for chat completions", "r1chat.dry_run")
    for key in ("tools", "tool_choice", "parallel_tool_calls"):
        if body.get(key) is not None:
            raise ApiError(f"{key} is for chat completions", key)
    refuse_unknown(body, _COMPLETION)
    _refuse_unhonoured(body)
    sampling = replace(_sampling(body, settings), schema=answer_schema(body))
    call = _call(body, Request(messages=(), sampling=sampling), RAW_GUARDS)
    return replace(call, prompt=prompt)


def _call(body: dict[str, Any], request: Request, guards: Any) -> Call:
    n = body.get("n")
    if n is not None and n != 1:
        raise ApiError(f"n must be 1 (one reply per request), not {n!r}", "n")
    stream = boolean_field(body, "stream", False, "stream")
    options = body.get("stream_options")
    if options is not None:
        object_field(options, "stream_options", {"include_usage"})
    include_usage = boolean_field(
        options or {}, "include_usage", False, "stream_options.include_usage"
    )
    return Call(
        model=model_field(body),
        request=request,
        guards=guards,
        stream=stream,
        include_usage=include_usage,
        stop=stops_of(body.get("stop")),
    )


def chat_messages(value: Any) -> tuple[Message, ...]:
    """The conversation; earlier answers lose their reasoning (a `reasoning_content` field
    is ignored, an inline `<think>` block dropped, as R1's own template does). An answer's
    `tool_calls` and the `tool` results that follow it are kept."""
    if not isinstance(value, list) or not value:
        raise ApiError("messages must be a non-empty array", "messages")
    out: list[Message] = []
    names: dict[str, str] = {}  # tool call id -> the tool's name
    for i, m in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise ApiError(f"{where} must be an object", where)
        role = m.get("role")
        if role not in ("system", "developer", "user", "assistant", "tool"):
            raise ApiError(
                f"{where}.role must be system, developer, user, assistant or tool, not {role!r}",
                f"{where}.role",
            )
        text = _content(m.get("content"), f"{where}.content")
        if role == "assistant":
            calls = calls_of(m.get("tool_calls"), f"{where}.tool_calls")
            names.update((c.id, c.name) for c in calls)
            out.append(Message("assistant", answer_only(text), tool_calls=calls))
        elif role == "tool":
            call_id = m.get("tool_call_id")
            name = m.get("name") or names.get(call_id if isinstance(call_id, str) else "", "")
            out.append(Message("tool", text, name=name if isinstance(name, str) else ""))
        else:
            out.append(Message("system" if role == "developer" else role, text))
    if out[-1].role not in ("user", "tool"):
        raise ApiError(
            "the last message must be the user's or a tool's result",
            f"messages[{len(out) - 1}].role",
        )
    return tuple(out)


def _content(value: Any, where: str) -> str:
    """A message's text: a string, or an array of text parts (other parts refused)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for part in value:
            if not isinstance(part, dict) or part.get("type") != "text":
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise ApiError(f"{where}: only text parts are supported, not {kind!r}", where)
            text = part.get("text")
            if not isinstance(text, str):
                raise ApiError(f"{where}: a text part's text must be a string", where)
            texts.append(text)
        return "\n".join(texts)
    raise ApiError(f"{where} must be a string or an array of text parts", where)


def _sampling(body: dict[str, Any], settings: Settings) -> Any:
    keys = ("temperature", "top_p", "top_k", "min_p", "seed")
    values = {k: body.get(k) for k in keys}
    values["max_tokens"] = body.get("max_completion_tokens", body.get("max_tokens"))
    named = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    return sampling_of(values, settings.sampling, {"max_tokens": named})


_EXTENSION = {"think_budget", "loop_guard", "think", "math", "dry_run"}


def _extension(body: dict[str, Any]) -> dict[str, Any]:
    """The `r1chat` object: R1 controls, each known by name."""
    ext = body.get("r1chat")
    if ext is None:
        return {}
    return object_field(ext, "r1chat", _EXTENSION)


def _excluded(body: dict[str, Any]) -> bool:
    """OpenRouter's `reasoning.exclude`: reason, but send none of it."""
    reasoning = body.get("reasoning")
    return isinstance(reasoning, dict) and boolean_field(
        reasoning, "exclude", False, "reasoning.exclude"
    )


def answer_schema(body: dict[str, Any]) -> str | None:
    """`response_format` as the JSON schema the answer is held to (None: free text)."""
    value = body.get("response_format")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ApiError("response_format must be an object", "response_format")
    kind = value.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return JSON_OBJECT
    if kind != "json_schema":
        raise ApiError(
            f"response_format.type must be text, json_object or json_schema, not {kind!r}",
            "response_format.type",
        )
    spec = value.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    return schema_text(schema, "response_format.json_schema.schema")


def _refuse_unhonoured(body: dict[str, Any]) -> None:
    """Fields r1chat cannot honour: an `ApiError` naming them, never a reply that ignores
    them."""
    if body.get("logprobs") or body.get("top_logprobs"):
        param = "logprobs" if body.get("logprobs") else "top_logprobs"
        raise ApiError(f"{param}: log probabilities are not supported", param)


# -- replies ----------------------------------------------------------------------------


def usage(done: Done) -> dict[str, Any]:
    """A reply's token counts in OpenAI's shape."""
    s = done.stats
    completion = s.thinking_tokens + s.answer_tokens
    return {
        "prompt_tokens": s.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": s.prompt_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": s.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": s.thinking_tokens},
    }


def tool_call(call: ToolCall) -> dict[str, Any]:
    """A call in OpenAI's shape."""
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


class _Writer:
    """What OpenAI's two writers share: the SSE framing, the closing chunks (the finish
    reason and the `r1chat` object, then usage if asked), the error frame."""

    media_type = "text/event-stream; charset=utf-8"
    waiting = b": waiting for a free slot\n\n"  # an SSE comment
    prefix, chunk_kind, whole_kind = "", "", ""

    def __init__(self, state: ReplyState, model: str) -> None:
        self.state, self.model = state, model
        self.id = self.prefix + uuid.uuid4().hex[:24]
        self.created = int(time.time())

    def chunk(self, piece: Piece) -> dict[str, Any]:
        """The streamed object that carries one piece."""
        raise NotImplementedError

    def _choice(self, value: Any, finish: str | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def _whole_choice(self) -> dict[str, Any]:
        raise NotImplementedError

    def closing(self, done: Done) -> bytes:
        state = self.state
        out = [sse(self.chunk(p)) for p in state.flush()]
        extra = {"r1chat": state.extension(done)}
        out.append(sse(self._object(self._choice(None, self._finish(done)), extra)))
        if state.call.include_usage:
            out.append(sse({**self._head(self.chunk_kind), "choices": [], "usage": usage(done)}))
        return b"".join([*out, SSE_DONE])

    def failure(self, error: ApiError) -> bytes:
        return sse(error.body()) + SSE_DONE

    def whole(self, done: Done) -> dict[str, Any]:
        self.state.flush()
        choice = {"index": 0, **self._whole_choice()}
        choice.update(finish_reason=self._finish(done), logprobs=None)
        return {
            **self._head(self.whole_kind),
            "choices": [choice],
            "usage": usage(done),
            "r1chat": self.state.extension(done),
        }

    def rendered(self, prompt: Rendered) -> dict[str, Any]:
        return prompt_object(self.model, prompt)

    def _finish(self, done: Done) -> str:
        return FINISH.get(self.state.finish(done), "stop")

    def _head(self, kind: str) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    def _object(self, choice: dict[str, Any], extra: Any = None) -> dict[str, Any]:
        return {**self._head(self.chunk_kind), "choices": [choice], **(extra or {})}


class ChatWriter(_Writer):
    """A chat completion: `chat.completion.chunk` objects, or one `chat.completion`."""

    prefix, chunk_kind, whole_kind = "chatcmpl-", "chat.completion.chunk", "chat.completion"

    def __init__(self, state: ReplyState, model: str) -> None:
        super().__init__(state, model)
        self._fields = {REASONING: "reasoning_content", TEXT: "content"}
        self._frames = {kind: self._template(field) for kind, field in self._fields.items()}

    def _template(self, field: str) -> Template:
        return Template(lambda text: sse(self._object(self._choice({field: text}))))

    def opening(self) -> bytes:
        return sse(self._object(self._choice({"role": "assistant", "content": ""})))

    def chunk(self, piece: Piece) -> dict[str, Any]:
        kind, value = piece
        if kind == CALLS:
            first = len(self.state.calls) - len(value)
            deltas = [{"index": first + i, **tool_call(c)} for i, c in enumerate(value)]
            return self._object(self._choice({"tool_calls": deltas}))
        return self._object(self._choice({self._fields[kind]: value}))

    def pieces(self, pieces: list[Piece]) -> bytes:
        return b"".join(
            self._frames[kind](value) if kind != CALLS else sse(self.chunk((kind, value)))
            for kind, value in pieces
        )

    def _choice(self, value: Any, finish: str | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": value or {}, "finish_reason": finish, "logprobs": None}

    def _whole_choice(self) -> dict[str, Any]:
        state = self.state
        content = "".join(state.content)
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if state.calls:
            message["content"] = content or None
            message["tool_calls"] = [tool_call(c) for c in state.calls]
        if state.reasoning:
            message["reasoning_content"] = "".join(state.reasoning)
        return {"message": message}


class CompletionWriter(_Writer):
    """A completion of a raw prompt: `text_completion` objects, streamed or whole."""

    prefix, chunk_kind, whole_kind = "cmpl-", "text_completion", "text_completion"

    def __init__(self, state: ReplyState, model: str) -> None:
        super().__init__(state, model)
        self._frame = Template(lambda text: sse(self._object(self._choice(text))))

    def opening(self) -> bytes:
        return b""

    def chunk(self, piece: Piece) -> dict[str, Any]:
        return self._object(self._choice(piece[1]))

    def pieces(self, pieces: list[Piece]) -> bytes:
        return b"".join(self._frame(text) for kind, text in pieces if kind == TEXT)

    def _choice(self, value: Any, finish: str | None = None) -> dict[str, Any]:
        return {"index": 0, "text": value or "", "finish_reason": finish, "logprobs": None}

    def _whole_choice(self) -> dict[str, Any]:
        return {"text": "".join(self.state.content)}


def error_body(error: ApiError) -> dict[str, Any]:
    return error.body()


CHAT = Dialect(parse_chat, ChatWriter, error_body)
COMPLETIONS = Dialect(parse_completion, CompletionWriter, error_body)
