"""Continuing a reply from `/completions` after r1chat closed its reasoning.

The chat endpoint cannot do it (R1's chat template deletes reasoning from assistant
messages), so the R1 prompt is rendered here as text, followed by the reasoning so far
and the injected text (a budget or loop-guard wrap-up, or `--no-think`'s empty
reasoning), and the server completes it.
"""

from __future__ import annotations

from typing import Any

from r1chat.core import r1
from r1chat.core.messages import prepare
from r1chat.core.request import Request, Sampling
from r1chat.engine.remote.chunks import SoFar


def sampling_fields(s: Sampling, *, extended: bool = True) -> dict[str, Any]:
    """The OpenAI sampling fields, and (`extended`) the top_k/min_p r1chat samples with
    (vLLM, llama-server, SGLang honour them): always sent, so a server's own defaults
    (llama-server's min-p 0.05) never replace the user's."""
    out: dict[str, Any] = {"temperature": s.temperature, "top_p": s.top_p}
    if extended:
        out.update(top_k=s.top_k, min_p=s.min_p)
    if s.max_tokens is not None:
        out["max_tokens"] = s.max_tokens
    if s.seed is not None:
        out["seed"] = s.seed
    return out


def continuation_body(
    model: str, request: Request, reply: SoFar, injected: str, *, extended: bool = True
) -> dict[str, Any]:
    """The `/completions` request that continues `reply` after `injected` (no stream
    fields: the caller adds them)."""
    messages = prepare(request.messages, system=request.system, math=request.math)
    prompt = r1.prompt_text(messages) + _reasoning_so_far(reply) + injected
    body: dict[str, Any] = {"model": model, "prompt": prompt}
    sampling = sampling_fields(request.sampling, extended=extended)
    if "max_tokens" in sampling:
        sampling["max_tokens"] = max(1, sampling["max_tokens"] - reply.deltas)
    body.update(sampling)
    return body


def _reasoning_so_far(reply: SoFar) -> str:
    if reply.field_mode:
        return "".join(reply.reasoning)
    text = "".join(reply.raw)
    stripped = text.lstrip()
    if stripped.startswith(r1.THINK_OPEN):
        text = stripped[len(r1.THINK_OPEN) :].removeprefix("\n")
    return text
