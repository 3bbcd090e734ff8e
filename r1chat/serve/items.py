"""What the model process tells the server about a job, besides the reply's events."""

from __future__ import annotations

from r1chat.core.request import prompt_problem
from r1chat.serve.requests import BadRequest


class Failed:
    """The job ended without a reply: `error` says why, in the API's terms."""

    def __init__(self, error: BadRequest) -> None:
        self.error = error


class Rendered:
    """A dry run's answer: the prompt's text and token ids."""

    def __init__(self, text: str, tokens: tuple[int, ...]) -> None:
        self.text, self.tokens = text, tokens


class Accepted:
    """The job's prompt fits (or is read when its turn comes): a stream may begin."""


class Started:
    """The job left the queue: its reply (or its model's load) begins."""


def too_long(tokens: int, n_ctx: int) -> BadRequest | None:
    """The 400 for a chat prompt of `tokens` that leaves no room in the context."""
    if (problem := prompt_problem(tokens, n_ctx)) is None:
        return None
    return BadRequest(
        f"{problem} (start the server with a larger --ctx, or send less)",
        "messages",
        code="context_length_exceeded",
    )
