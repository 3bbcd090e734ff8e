"""What a dialect of `r1chat serve` is: a parser from its request body into the one `Call`,
a writer from the one `ReplyState` into its JSON and stream frames, and its error shape.
Adding an API is adding one of these (`serve.dialects.DIALECTS`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from r1chat.config.settings import Settings
from r1chat.core.events import Done
from r1chat.host.outcomes import Rendered
from r1chat.serve.call import Call
from r1chat.serve.errors import ApiError
from r1chat.serve.reply import Piece, ReplyState


class Writer(Protocol):
    """One reply in a dialect's shape, streamed or whole."""

    media_type: str
    """The stream's content type."""

    waiting: bytes
    """What a stream still queued for a free slot gets every few seconds (b"": nothing)."""

    def opening(self) -> bytes:
        """A stream's first frames, once its prompt was accepted."""
        ...

    def pieces(self, pieces: list[Piece]) -> bytes:
        """The frames for what the reply just added (the hot path of a stream)."""
        ...

    def closing(self, done: Done) -> bytes:
        """A stream's last frames: what was held back, how it ended, the end marker."""
        ...

    def failure(self, error: ApiError) -> bytes:
        """A stream that breaks off: the error as a frame, then the end marker."""
        ...

    def whole(self, done: Done) -> dict[str, Any]:
        """The whole reply's body (the events were fed to its state already)."""
        ...

    def rendered(self, prompt: Rendered) -> dict[str, Any]:
        """A dry run's body: the prompt as the model sees it."""
        ...


def prompt_object(model: str, prompt: Rendered) -> dict[str, Any]:
    """A dry run's answer (`r1chat.dry_run`): the prompt's text and token ids."""
    return {
        "object": "r1chat.prompt",
        "model": model,
        "prompt": prompt.text,
        "tokens": list(prompt.tokens),
    }


@dataclass(frozen=True)
class Dialect:
    """A route's API: `parse(body, settings)` (the server's settings: what a request does
    not say) gives the `Call`; `writer(state, model)` writes its reply; `error_body` its
    refusals."""

    parse: Callable[[Any, Settings], Call]
    writer: Callable[[ReplyState, str], Writer]
    error_body: Callable[[ApiError], dict[str, Any]]


def compact(obj: Any) -> bytes:
    """JSON as clients read it fastest: no spaces, text as is."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def sse(obj: Any, event: str | None = None) -> bytes:
    """One server-sent event (with its `event:` line, where the dialect names events)."""
    head = f"event: {event}\n".encode() if event is not None else b""
    return head + b"data: " + compact(obj) + b"\n\n"


def json_line(obj: Any) -> bytes:
    """One NDJSON line."""
    return compact(obj) + b"\n"


_MARK = "\x00"
_MARK_JSON = json.dumps(_MARK).encode()


class Template:
    """A frame whose one text field changes: the frame is built once around a marker
    and each text is spliced in (a frame per token is a stream's hot path)."""

    def __init__(self, frame: Callable[[str], bytes]) -> None:
        self._head, self._tail = frame(_MARK).split(_MARK_JSON)

    def __call__(self, text: str) -> bytes:
        return self._head + json.dumps(text, ensure_ascii=False).encode() + self._tail
