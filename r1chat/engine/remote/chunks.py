"""Streamed chunks of an OpenAI-compatible reply, as (channel, text, tokens) pieces.

Reasoning comes from wherever the server puts it: a `reasoning_content` / `reasoning`
delta field (sent as `Channel.THINKING`, and the `content` after it as
`Channel.ANSWER`) or inline `<think>` tags in `content` (sent as `Channel.RAW` for the
turn's splitter). `SoFar` is what one reply has produced so far, across its requests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from r1chat.core.events import Channel
from r1chat.core.reasoning import ANSWER, Splitter, State

Piece = tuple[Channel, str, int]  # channel, text, tokens (0: a marker, no text counted)

GROUP = 16
"""At most this many server deltas are merged into one piece by `coalesce`."""


class BadChunk(ValueError):
    """A chunk that is not OpenAI's shape (the message says what is missing)."""


@dataclass(slots=True)
class SoFar:
    """What one reply has produced so far, across its requests."""

    deltas: int = 0  # deltas yielded (each counted as one token)
    received: int = 0  # chunks that carried text, shown or not (what max_tokens counts)
    stream_deltas: int = 0  # of them, from the current request
    stream_thinking: int = 0  # of those, the ones in the reasoning field
    field_mode: bool = False  # the server sends reasoning in a separate field
    reasoning: list[str] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)  # inline-mode content so far
    closed: bool = False  # r1chat closed the reasoning (budget, loop guard, --no-think)
    degraded: bool = False  # closed, but the server could not continue: reasoning hidden
    answering: bool = False  # field mode: the answer has started
    hider: Splitter | None = None  # set while reasoning goes on unshown (no continuation)
    finish: str | None = None
    usage: dict[str, Any] | None = None
    progress_sent: bool = False

    @property
    def hiding(self) -> bool:
        return self.hider is not None

    def start_hiding(self) -> None:
        """The server cannot continue after r1chat closed the reasoning: what it still
        reasons is dropped, up to its own `</think>`."""
        self.degraded = True
        self.hider = Splitter(opened=True)


def pieces(obj: dict[str, Any], reply: SoFar, chat: bool) -> list[Piece]:
    """The pieces of one streamed chunk; records the finish reason and usage."""
    choices = obj.get("choices")
    if choices:
        choice = choices[0]
        if not isinstance(choice, dict):
            raise BadChunk("a streamed chunk had no choices")
    else:
        usage = obj.get("usage")
        if isinstance(usage, dict):
            reply.usage = usage
        elif choices is None:
            raise BadChunk("a streamed chunk had no choices")
        return []
    if obj.get("usage"):
        reply.usage = obj["usage"]
    if choice.get("finish_reason"):
        reply.finish = str(choice["finish_reason"])
    if not chat:  # /completions: everything is answer (the reasoning was closed)
        text = choice.get("text")
        if not (isinstance(text, str) and text):
            return []
        reply.received += 1
        return [(Channel.ANSWER, text, 1)]
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        delta = choice.get("message")  # a server that ignored stream=true
        if not isinstance(delta, dict):
            raise BadChunk("a streamed chunk had no delta")
    out: list[Piece] = []
    thought = delta.get("reasoning_content")
    if thought is None:
        thought = delta.get("reasoning")
    text = delta.get("content")
    if (isinstance(thought, str) and thought) or (isinstance(text, str) and text):
        reply.received += 1
    if isinstance(thought, str):
        reply.field_mode = True
        if thought:
            if not reply.closed:
                out.append((Channel.THINKING, thought, 1))
            elif not reply.hiding:  # reasoning after r1chat closed it
                out.append((Channel.ANSWER, thought, 1))
    text = delta.get("content")
    if isinstance(text, str) and text:
        if reply.field_mode:
            if not reply.answering and not reply.closed:
                out.append((Channel.ANSWER, "", 0))
            reply.hider, reply.answering = None, True
            out.append((Channel.ANSWER, text, 1))
        elif reply.hiding:
            out += _unhide(reply, text)
        else:
            out.append((Channel.RAW, text, 1))
    return out


def hide(classified: list[Piece], reply: SoFar) -> list[Piece]:
    """Pieces classified before the reasoning was closed, as they read after it."""
    out: list[Piece] = []
    for channel, text, tokens in classified:
        if channel is Channel.ANSWER:
            reply.hider = None
            out.append((channel, text, tokens))
        elif channel is Channel.RAW and reply.hiding:
            out += _unhide(reply, text)
        elif channel is Channel.RAW:
            out.append((Channel.ANSWER, text, tokens))
    return out


def _unhide(reply: SoFar, text: str) -> list[Piece]:
    """Inline text while hiding: dropped up to the model's own `</think>` (the turn's
    splitter decides where that is), the answer after it kept."""
    assert reply.hider is not None
    split = reply.hider.feed(text)
    answer = "".join(t for kind, t in split if kind == ANSWER)
    if reply.hider.state is State.ANSWER:
        reply.hider = None
        return [(Channel.ANSWER, answer, 1)]
    return []


def coalesce(items: list[Piece]) -> list[Piece]:
    """Merge runs of same-channel pieces, GROUP at most; zero-token markers stay apart."""
    out: list[Piece] = []
    texts: list[str] = []
    channel: Channel | None = None
    count = 0
    for piece in items:
        if piece[0] is channel and piece[2] == 1 and count < GROUP:
            texts.append(piece[1])
            count += 1
            continue
        if texts:
            out.append((channel, "".join(texts), count))  # type: ignore[arg-type]
        if piece[2] == 1:
            channel, texts, count = piece[0], [piece[1]], 1
        else:
            out.append(piece)
            channel, texts, count = None, [], 0
    if texts:
        out.append((channel, "".join(texts), count))  # type: ignore[arg-type]
    return out


_scan: Any = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def loads(data: bytes) -> Any:
    """`json.loads` for one event's data, without its per-call overhead (thousands a second)."""
    text = data.decode("utf-8")
    try:
        obj, end = _scan(text, 0)
    except StopIteration:
        return json.loads(text)  # leading white space, or not JSON: the full parser decides
    if end != len(text) and text[end:].strip():
        return json.loads(text)  # raises
    return obj


def reasoning_tokens(usage: dict[str, Any]) -> int | None:
    """Completion tokens the server counted as reasoning, when its `usage` says."""
    details = usage.get("completion_tokens_details")
    value = details.get("reasoning_tokens") if isinstance(details, dict) else None
    return value if isinstance(value, int) and value >= 0 else None


def cached_tokens(usage: dict[str, Any]) -> int:
    """Prompt tokens the server took from its cache, as its `usage` says."""
    details = usage.get("prompt_tokens_details")
    if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
        return int(details["cached_tokens"])
    hit = usage.get("prompt_cache_hit_tokens")  # DeepSeek's API
    return hit if isinstance(hit, int) else 0


def context_of(model: dict[str, Any]) -> int:
    """The context length a models entry states: vLLM `max_model_len`, llama-server
    `meta.n_ctx_train`, others `context_length`."""
    for value in (
        model.get("max_model_len"),
        model.get("context_length"),
        (model.get("meta") or {}).get("n_ctx_train"),
    ):
        if isinstance(value, int) and value > 0:
            return value
    return 0
