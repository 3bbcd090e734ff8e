"""The overflow policy (`core.overflow`) applied to a request, with the engine counting
the prompt's tokens: the one place the model host and `ask` go."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from r1chat.core.messages import Message
from r1chat.core.overflow import Overflow, fit
from r1chat.core.request import Request
from r1chat.core.turn import Guards
from r1chat.engine.base import Engine


def fit_request(
    engine: Engine, request: Request, guards: Guards, overflow: Overflow
) -> tuple[Request, int]:
    """(the request to send, exchanges left out); as it is for an engine that cannot count
    tokens (a remote server)."""
    count = token_counter(engine, request)
    if count is None:
        return request, 0
    fitted = fit(request.messages, count, engine.info.n_ctx, overflow, guards.think_budget)
    if not fitted.left_out:
        return request, 0
    return replace(request, messages=fitted.messages), fitted.left_out


def token_counter(engine: Engine, request: Request) -> Callable[[tuple[Message, ...]], int] | None:
    """The prompt tokens `request` would take with other messages; None for an engine
    that cannot count them (a remote server)."""
    if not engine.info.caps.counts:
        return None
    whole = engine.count_prompt(request)

    def count(messages: tuple[Message, ...]) -> int:
        if messages == request.messages:
            return whole
        return engine.count_prompt(replace(request, messages=messages))

    return count
