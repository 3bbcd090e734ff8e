"""What the model process tells the server about a job, besides the reply's events."""

from __future__ import annotations

from r1chat.serve.fields import BadRequest


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


def too_long_error(problem: str) -> BadRequest:
    """The 400 for a chat prompt that leaves no room in the context (`problem`: the
    engine's words, `core.request.prompt_problem`'s)."""
    return BadRequest(
        f"{problem.split('; ')[0]} (start the server with a larger --ctx, or send less)",
        "messages",
        code="context_length_exceeded",
    )
