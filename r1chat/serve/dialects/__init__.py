"""The APIs `r1chat serve` speaks, each a parser into the one `Call` and a writer from the
one `ReplyState` (`base.Dialect`): OpenAI's chat completions and completions
(`openai`), Anthropic's messages (`anthropic`), Ollama's chat and generate (`ollama`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from r1chat.serve.dialects import anthropic, ollama, openai
from r1chat.serve.errors import ApiError


def error_body_for(path: str) -> Callable[[ApiError], dict[str, Any]]:
    """The error shape of the API `path` belongs to: what a refusal is written in before
    (or without) a route's own dialect."""
    if path.startswith("/api/"):
        return ollama.error_body
    if path.startswith("/v1/messages"):
        return anthropic.error_body
    return openai.error_body
