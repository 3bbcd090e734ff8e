"""What a client asks for: an OpenAI request body, checked field by field, as a `Call`.

Sampling and reasoning fields follow the same rules as the config's keys
(`config.schema`), so `temperature: 9` is refused here as it is in `config.toml`. A field
of the wrong type, one r1chat cannot honour (`logprobs`) or does not know, is a
`BadRequest` naming it: never a reply that ignores it. Fields about the request rather
than the reply (`user`, `metadata`...) pass, and OpenAI's and llama.cpp's knobs r1chat has
no use for pass only at the value that changes nothing (`frequency_penalty: 0`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from r1chat.config.schema import RULES, SAMPLING
from r1chat.config.settings import Settings
from r1chat.core import r1
from r1chat.core.messages import Message
from r1chat.core.request import Request, Sampling
from r1chat.core.turn import Guards
from r1chat.serve.fields import BadRequest, boolean_field, object_field
from r1chat.serve.tool_fields import calls_of, offered_tools

EFFORT_BUDGETS: dict[str, int | None] = {
    "minimal": 256,
    "low": 1024,
    "medium": 4096,
    "high": None,
    "xhigh": None,
    "max": None,
}
"""`reasoning_effort` as a thinking budget (`none` skips the reasoning; `high` and above:
no budget)."""

MAX_STOPS = 4  # as OpenAI


@dataclass(frozen=True, slots=True)
class Call:
    """One request, ready for the engine: a chat (`request`) or a raw prompt (`prompt`)."""

    model: str | None  # None: the model the server was started with
    request: Request  # for a raw prompt, only its sampling counts
    guards: Guards
    stream: bool
    include_usage: bool
    stop: tuple[str, ...] = ()
    prompt: str | None = None  # /v1/completions
    dry_run: bool = False  # `r1chat.dry_run`: answer with the prompt as the model sees it
    show_reasoning: bool = True  # False: generated, not sent (`reasoning.exclude`)

    @property
    def chat(self) -> bool:
        return self.prompt is None


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
_ABOUT_THE_REQUEST = {"user", "metadata", "store", "service_tier", "safety_identifier"}
_ABOUT_THE_REQUEST |= {"prompt_cache_key", "id_slot"}
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


def _refuse_unknown(body: dict[str, Any], known: set[str]) -> None:
    """A 400 for the first field that is not `known`, about the request, or inert."""
    for key, value in body.items():
        if key in known or key in _ABOUT_THE_REQUEST or value is None:
            continue
        if key in _INERT:
            if value in _INERT[key]:
                continue
            allowed = " or ".join(json.dumps(v) for v in _INERT[key])
            raise BadRequest(f"{key} is not supported by r1chat serve (only {allowed})", key)
        raise BadRequest(f"{key} is not supported by r1chat serve", key)


def parse_chat(body: Any, settings: Settings) -> Call:
    """A `/v1/chat/completions` body."""
    body = _object(body)
    _refuse_unknown(body, _CHAT)
    messages = _messages(body.get("messages"))
    r1chat = _extension(body)
    guards, think = _reasoning(body, r1chat, settings)
    _refuse_unhonoured(body)
    sampling = replace(_sampling(body, settings.sampling), schema=answer_schema(body))
    tools = offered_tools(body)
    if tools is not None and tools.callable and sampling.schema is not None:
        raise BadRequest(
            "response_format cannot hold an answer that may call tools: use one or the other",
            "response_format",
        )
    request = Request(
        messages=messages,
        sampling=sampling,
        system=settings.system,
        think=think,
        math=boolean_field(r1chat, "math", settings.math, "r1chat.math"),
        tools=tools,
    )
    call = _call(body, request, guards)
    dry_run = boolean_field(r1chat, "dry_run", False, "r1chat.dry_run")
    if dry_run and call.stream:
        raise BadRequest("r1chat.dry_run needs stream: false", "r1chat.dry_run")
    return replace(call, dry_run=dry_run, show_reasoning=not _excluded(body))


def parse_completion(body: Any, settings: Settings) -> Call:
    """A `/v1/completions` body: the prompt is the client's, markup and all; no guards
    (the reply is not split into reasoning and answer)."""
    body = _object(body)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise BadRequest("prompt must be a non-empty string", "prompt")
    if "r1chat" in body and _extension(body).get("dry_run"):
        raise BadRequest("r1chat.dry_run is for chat completions", "r1chat.dry_run")
    for key in ("tools", "tool_choice", "parallel_tool_calls"):
        if body.get(key) is not None:
            raise BadRequest(f"{key} is for chat completions", key)
    _refuse_unknown(body, _COMPLETION)
    _refuse_unhonoured(body)
    sampling = replace(_sampling(body, settings.sampling), schema=answer_schema(body))
    request = Request(messages=(), sampling=sampling)
    call = _call(body, request, Guards(think_budget=None, loop_guard=False, answer_room=False))
    return replace(call, prompt=prompt)


def _call(body: dict[str, Any], request: Request, guards: Guards) -> Call:
    model = body.get("model")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise BadRequest("model must be a model name (see GET /v1/models)", "model")
    n = body.get("n")
    if n is not None and n != 1:
        raise BadRequest(f"n must be 1 (one reply per request), not {n!r}", "n")
    stream = boolean_field(body, "stream", False, "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise BadRequest("stream_options must be an object", "stream_options")
    include_usage = boolean_field(
        options or {}, "include_usage", False, "stream_options.include_usage"
    )
    return Call(
        model=model.strip() if model else None,
        request=request,
        guards=guards,
        stream=stream,
        include_usage=include_usage,
        stop=_stops(body.get("stop")),
    )


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _messages(value: Any) -> tuple[Message, ...]:
    """The conversation; earlier answers lose their reasoning (a `reasoning_content` field
    is ignored, an inline `<think>` block dropped, as R1's own template does). An answer's
    `tool_calls` and the `tool` results that follow it are kept."""
    if not isinstance(value, list) or not value:
        raise BadRequest("messages must be a non-empty array", "messages")
    out: list[Message] = []
    names: dict[str, str] = {}  # tool call id -> the tool's name
    for i, m in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise BadRequest(f"{where} must be an object", where)
        role = m.get("role")
        if role not in ("system", "developer", "user", "assistant", "tool"):
            raise BadRequest(
                f"{where}.role must be system, developer, user, assistant or tool, not {role!r}",
                f"{where}.role",
            )
        text = _content(m.get("content"), f"{where}.content")
        if role == "assistant":
            if r1.THINK_CLOSE in text:
                text = text.rsplit(r1.THINK_CLOSE, 1)[1].lstrip()
            calls = calls_of(m.get("tool_calls"), f"{where}.tool_calls")
            names.update((c.id, c.name) for c in calls)
            out.append(Message("assistant", text, tool_calls=calls))
        elif role == "tool":
            call_id = m.get("tool_call_id")
            name = m.get("name") or names.get(call_id if isinstance(call_id, str) else "", "")
            out.append(Message("tool", text, name=name if isinstance(name, str) else ""))
        else:
            out.append(Message("system" if role == "developer" else role, text))
    if out[-1].role not in ("user", "tool"):
        raise BadRequest(
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
                raise BadRequest(f"{where}: only text parts are supported, not {kind!r}", where)
            text = part.get("text")
            if not isinstance(text, str):
                raise BadRequest(f"{where}: a text part's text must be a string", where)
            texts.append(text)
        return "\n".join(texts)
    raise BadRequest(f"{where} must be a string or an array of text parts", where)


def _sampling(body: dict[str, Any], base: Sampling) -> Sampling:
    values: dict[str, Any] = {}
    tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    given = {**{k: body.get(k) for k in SAMPLING if k != "max_tokens"}, "max_tokens": tokens}
    for key, value in given.items():
        if value is None:
            continue
        name = (
            "max_completion_tokens"
            if key == "max_tokens" and "max_completion_tokens" in body
            else key
        )
        if (problem := SAMPLING[key].problem(value)) is not None:
            raise BadRequest(f"{name} {problem}", name)
        values[key] = value
    return replace(base, **values)


def _extension(body: dict[str, Any]) -> dict[str, Any]:
    ext = body.get("r1chat")
    if ext is None:
        return {}
    if not isinstance(ext, dict):
        raise BadRequest("r1chat must be an object", "r1chat")
    return ext


def _reasoning(
    body: dict[str, Any], ext: dict[str, Any], settings: Settings
) -> tuple[Guards, bool]:
    """The guards and whether to reason: `r1chat.think_budget` / `loop_guard` / `think`,
    else `reasoning_effort`, else the server's settings."""
    budget = settings.guards.think_budget
    think = settings.think
    switches = thinking_switches(body)
    if (on := switches.get("think")) is not None:
        think = on
    if (effort := switches.get("effort")) is not None:
        think = effort != "none"
        budget = EFFORT_BUDGETS.get(effort)
    if (tokens := switches.get("budget")) is not None:
        budget = tokens
    if "think_budget" in ext:
        value = ext["think_budget"]
        if value is not None and (problem := RULES["reasoning"]["think_budget"].problem(value)):
            raise BadRequest(f"r1chat.think_budget {problem}", "r1chat.think_budget")
        budget = value
    loop_guard = boolean_field(ext, "loop_guard", settings.guards.loop_guard, "r1chat.loop_guard")
    think = boolean_field(ext, "think", think, "r1chat.think")
    return Guards(think_budget=budget, loop_guard=loop_guard), think


def _stops(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise BadRequest("stop must be a string or an array of non-empty strings", "stop")
    if len(stops) > MAX_STOPS:
        raise BadRequest(f"stop takes at most {MAX_STOPS} strings", "stop")
    return tuple(stops)


def effort_of(value: Any, name: str) -> str:
    """A reasoning effort, checked (`none` skips the reasoning)."""
    if value != "none" and value not in EFFORT_BUDGETS:
        known = ", ".join(["none", *EFFORT_BUDGETS])
        raise BadRequest(f"{name} must be one of {known}, not {value!r}", name)
    return str(value)


def thinking_switches(body: dict[str, Any]) -> dict[str, Any]:
    """What a body says about reasoning, in every dialect clients speak: OpenAI's
    `reasoning_effort`, OpenRouter's `reasoning` {effort, enabled, max_tokens, exclude},
    Anthropic's `thinking` {type, budget_tokens}, vLLM's and oterm's
    `chat_template_kwargs.enable_thinking`. Returns `think` (bool), `effort`, `budget`."""
    out: dict[str, Any] = {}
    if (effort := body.get("reasoning_effort")) is not None:
        out["effort"] = effort_of(effort, "reasoning_effort")
    if (reasoning := body.get("reasoning")) is not None:
        table = object_field(reasoning, "reasoning", {"effort", "enabled", "max_tokens", "exclude"})
        if (effort := table.get("effort")) is not None:
            out["effort"] = effort_of(effort, "reasoning.effort")
        if table.get("enabled") is not None:
            out["think"] = boolean_field(table, "enabled", True, "reasoning.enabled")
        if (tokens := table.get("max_tokens")) is not None:
            out["budget"] = _budget(tokens, "reasoning.max_tokens")
    if (thinking := body.get("thinking")) is not None:
        table = object_field(thinking, "thinking", {"type", "budget_tokens"})
        kind = table.get("type")
        if kind not in (None, "enabled", "disabled"):
            raise BadRequest(
                f"thinking.type must be enabled or disabled, not {kind!r}", "thinking.type"
            )
        if kind is not None:
            out["think"] = kind == "enabled"
        if (tokens := table.get("budget_tokens")) is not None:
            out["budget"] = _budget(tokens, "thinking.budget_tokens")
    if (kwargs := body.get("chat_template_kwargs")) is not None:
        table = object_field(kwargs, "chat_template_kwargs", {"enable_thinking", "thinking"})
        for key in ("enable_thinking", "thinking"):
            if table.get(key) is not None:
                out["think"] = boolean_field(table, key, True, f"chat_template_kwargs.{key}")
    return out


def _excluded(body: dict[str, Any]) -> bool:
    """OpenRouter's `reasoning.exclude`: reason, but send none of it."""
    reasoning = body.get("reasoning")
    return isinstance(reasoning, dict) and boolean_field(
        reasoning, "exclude", False, "reasoning.exclude"
    )


def _budget(value: Any, name: str) -> int:
    if (problem := RULES["reasoning"]["think_budget"].problem(value)) is not None:
        raise BadRequest(f"{name} {problem}", name)
    return int(value)


JSON_OBJECT = '{"type": "object"}'
"""The schema of `json_object` answers: any JSON object."""


def answer_schema(body: dict[str, Any]) -> str | None:
    """`response_format` as the JSON schema the answer is held to (None: free text)."""
    value = body.get("response_format")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest("response_format must be an object", "response_format")
    kind = value.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return JSON_OBJECT
    if kind != "json_schema":
        raise BadRequest(
            f"response_format.type must be text, json_object or json_schema, not {kind!r}",
            "response_format.type",
        )
    spec = value.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
        raise BadRequest(
            "response_format.json_schema.schema must be a JSON schema (an object)",
            "response_format.json_schema.schema",
        )
    return json.dumps(spec["schema"])


def _refuse_unhonoured(body: dict[str, Any]) -> None:
    """Fields r1chat cannot honour: a 400 naming them, never a reply that ignores them."""
    if body.get("logprobs") or body.get("top_logprobs"):
        param = "logprobs" if body.get("logprobs") else "top_logprobs"
        raise BadRequest(f"{param}: log probabilities are not supported", param)
