"""The one internal request every dialect parses into (`Call`), and the field rules they
share: sampling values (the config's rules, so `temperature: 9` is refused here as in
`config.toml`), stop strings, an answer's JSON schema, and reasoning switches as a
thinking budget (`EFFORT_BUDGETS`: the one place an effort becomes a budget)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from r1chat.config.schema import RULES, SAMPLING
from r1chat.config.settings import Settings
from r1chat.core import r1
from r1chat.core.errors import BadSchema
from r1chat.core.request import Request, Sampling
from r1chat.core.schemas import check
from r1chat.core.turn import Guards
from r1chat.serve.errors import ApiError
from r1chat.serve.fields import boolean_field, object_field

EFFORT_BUDGETS: dict[str, int | None] = {
    "minimal": 256,
    "low": 1024,
    "medium": 4096,
    "high": None,
    "xhigh": None,
    "max": None,
}
"""A reasoning effort as a thinking budget (`none` skips the reasoning; `high` and above:
no budget)."""

MAX_STOPS = 4  # as OpenAI


@dataclass(frozen=True, slots=True)
class Call:
    """One request, ready for the model host: a chat (`request`) or a raw prompt
    (`prompt`), and how its reply goes out."""

    model: str | None  # None: the model the server was started with
    request: Request  # for a raw prompt, only its sampling counts
    guards: Guards
    stream: bool
    include_usage: bool = False
    stop: tuple[str, ...] = ()
    prompt: str | None = None  # a raw prompt (`/v1/completions`, Ollama's `raw`)
    dry_run: bool = False  # `r1chat.dry_run`: answer with the prompt as the model sees it
    show_reasoning: bool = True  # False: generated, not sent (`reasoning.exclude`)
    keep_alive: float | None = None  # seconds the model stays loaded after it (Ollama's)
    truncate: bool = False  # the oldest exchanges that do not fit are left out (else a 400)
    context: int | None = None  # the context the client wants (Ollama's num_ctx)
    echo: dict[str, Any] = field(default_factory=dict)  # what the reply repeats of the request

    @property
    def chat(self) -> bool:
        return self.prompt is None


RAW_GUARDS = Guards(think_budget=None, loop_guard=False, answer_room=False)
"""A raw prompt's reply is not split into reasoning and answer: nothing to guard."""


def answer_only(text: str) -> str:
    """An earlier answer without an inline reasoning block (R1's template drops it, and
    the reasoning is never sent back)."""
    if r1.THINK_CLOSE in text:
        return text.rsplit(r1.THINK_CLOSE, 1)[1].lstrip()
    return text


def model_field(body: dict[str, Any], key: str = "model") -> str | None:
    """The model a body names (None: the server's)."""
    model = body.get(key)
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise ApiError(f"{key} must be a model name (see GET /v1/models)", key)
    return model.strip() if model else None


def sampling_of(
    values: dict[str, Any], base: Sampling, names: dict[str, str] | None = None
) -> Sampling:
    """`base` with the sampling `values` given (`max_tokens`, `temperature`...: the
    config's keys), each checked by the config's rule and named in errors as `names`
    says (a dialect's own field name: `max_output_tokens`, `options.num_predict`)."""
    names = names or {}
    given = {}
    for key, value in values.items():
        if value is None:
            continue
        name = names.get(key, key)
        if (problem := SAMPLING[key].problem(value)) is not None:
            raise ApiError(f"{name} {problem}", name)
        given[key] = value
    return replace(base, **given)


def stops_of(value: Any, name: str = "stop") -> tuple[str, ...]:
    """Stop strings: one, or a list of up to `MAX_STOPS`."""
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise ApiError(f"{name} must be a string or an array of non-empty strings", name)
    if len(stops) > MAX_STOPS:
        raise ApiError(f"{name} takes at most {MAX_STOPS} strings", name)
    return tuple(stops)


JSON_OBJECT = '{"type": "object"}'
"""The schema of `json_object` answers: any JSON object."""


def schema_text(schema: Any, name: str) -> str:
    """A JSON schema given by a client, as the text the grammar is built from; one that an
    answer cannot be held to is refused here (`core.schemas`), naming what in it."""
    if not isinstance(schema, dict):
        raise ApiError(f"{name} must be a JSON schema (an object)", name)
    try:
        check(schema)
    except BadSchema as e:
        raise ApiError(f"{name}: {e}", name) from None
    return json.dumps(schema)


def effort_of(value: Any, name: str) -> str:
    """A reasoning effort, checked (`none` skips the reasoning)."""
    if value != "none" and value not in EFFORT_BUDGETS:
        known = ", ".join(["none", *EFFORT_BUDGETS])
        raise ApiError(f"{name} must be one of {known}, not {value!r}", name)
    return str(value)


def budget_of(value: Any, name: str) -> int:
    """A thinking budget in tokens, checked as the config's `think_budget`."""
    if (problem := RULES["reasoning"]["think_budget"].problem(value)) is not None:
        raise ApiError(f"{name} {problem}", name)
    return int(value)


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
            out["budget"] = budget_of(tokens, "reasoning.max_tokens")
    if (thinking := body.get("thinking")) is not None:
        table = object_field(thinking, "thinking", {"type", "budget_tokens"})
        kind = table.get("type")
        if kind not in (None, "enabled", "disabled"):
            raise ApiError(
                f"thinking.type must be enabled or disabled, not {kind!r}", "thinking.type"
            )
        if kind is not None:
            out["think"] = kind == "enabled"
        if (tokens := table.get("budget_tokens")) is not None:
            out["budget"] = budget_of(tokens, "thinking.budget_tokens")
    if (kwargs := body.get("chat_template_kwargs")) is not None:
        table = object_field(kwargs, "chat_template_kwargs", {"enable_thinking", "thinking"})
        for key in ("enable_thinking", "thinking"):
            if table.get(key) is not None:
                out["think"] = boolean_field(table, key, True, f"chat_template_kwargs.{key}")
    return out


def reasoning_of(switches: dict[str, Any], settings: Settings) -> tuple[Guards, bool]:
    """The guards and whether to reason, from `thinking_switches` over the server's
    settings: an effort sets the budget (`none`: no reasoning), a budget wins over it."""
    budget = settings.guards.think_budget
    think = settings.think
    if (on := switches.get("think")) is not None:
        think = on
    if (effort := switches.get("effort")) is not None:
        think = effort != "none"
        budget = EFFORT_BUDGETS.get(effort)
    if (tokens := switches.get("budget")) is not None:
        budget = tokens
    return replace(settings.guards, think_budget=budget), think
