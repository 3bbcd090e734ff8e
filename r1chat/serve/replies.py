"""What the API answers: one reply's events as OpenAI objects, streamed or whole.

The shape is DeepSeek's and vLLM's: reasoning in `reasoning_content`, the answer in
`content`, never mixed; `usage` counts reasoning tokens apart. The last chunk carries an
`r1chat` object too: how the reply ended (`loop` is reported to OpenAI clients as
`stop`), the reasoning's time and tokens, what cut it, a `\\boxed{}` answer, notices.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from r1chat.core.events import AnswerDelta, Done, Notice, ThinkingDelta
from r1chat.core.messages import ToolCall
from r1chat.core.tools import CallReader
from r1chat.serve.fields import BadRequest
from r1chat.serve.requests import Call

FINISH = {"stop": "stop", "length": "length", "loop": "stop"}
"""r1chat's finish reasons as OpenAI's (cancelled and error never reach a client)."""


def sse(obj: dict[str, Any]) -> bytes:
    """One server-sent event."""
    return b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def json_line(obj: dict[str, Any]) -> bytes:
    """One NDJSON line (Ollama's streams)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


SSE_DONE = b"data: [DONE]\n\n"
Text = tuple[str, Any]
"""A piece of a reply: its field (`reasoning_content`, `content`, or `text` for a raw
completion) and its text, or `tool_calls` and the calls' deltas."""
_MARK = "\x00"
_MARK_JSON = json.dumps(_MARK).encode()


class Stops:
    """Cuts text at the first of the client's stop strings, holding back what may be the
    start of one until the next text says."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = stops
        self._held = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """The text that may go out now, and whether a stop string was reached."""
        if not self.stops:
            return text, False
        text = self._held + text
        hits = [i for s in self.stops if (i := text.find(s)) != -1]
        if hits:
            self._held = ""
            return text[: min(hits)], True
        keep = max((_prefix_at_end(text, s) for s in self.stops), default=0)
        self._held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep], False

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held


def _prefix_at_end(text: str, stop: str) -> int:
    """Length of the longest end of `text` that begins `stop` (shorter than `stop`)."""
    for n in range(min(len(stop) - 1, len(text)), 0, -1):
        if text.endswith(stop[:n]):
            return n
    return 0


class Reply:
    """Builds the answer to one call from its events, in OpenAI's shape (`OllamaReply`:
    Ollama's); `on_stop` ends the generation when a stop string is reached."""

    media_type = "text/event-stream; charset=utf-8"
    end = SSE_DONE  # what ends a stream
    waiting = b": waiting for a free slot\n\n"  # sent while queued (an SSE comment)

    def frame(self, obj: dict[str, Any]) -> bytes:
        """One streamed object on the wire."""
        return sse(obj)

    def error(self, e: BadRequest) -> dict[str, Any]:
        """An error's body."""
        return e.body()

    def __init__(self, call: Call, model: str, on_stop: Callable[[], None]) -> None:
        self.call, self.model, self.on_stop = call, model, on_stop
        self.chat = call.chat
        self.id = ("chatcmpl-" if self.chat else "cmpl-") + uuid.uuid4().hex[:24]
        self.created = int(time.time())
        self.reasoning: list[str] = []
        self.content: list[str] = []
        self.notices: list[str] = []
        self.stopped = False  # a stop string was reached
        self._stops = Stops(call.stop)
        tools = call.request.tools
        self._reader = CallReader() if tools is not None and tools.callable else None
        self.calls: list[ToolCall] = []
        self._cuts: dict[str, tuple[bytes, bytes]] = {}

    # -- streaming ------------------------------------------------------------------

    def first(self) -> list[dict[str, Any]]:
        return [self._chunk({"role": "assistant", "content": ""})] if self.chat else []

    def feed(self, event: object) -> list[Text]:
        """The text one event adds, as (field, text) pieces (none for most events)."""
        if isinstance(event, ThinkingDelta):
            if self.stopped or not event.text or not self.call.show_reasoning:
                return []
            self.reasoning.append(event.text)
            return [("reasoning_content", event.text)]
        if isinstance(event, AnswerDelta):
            return self._answer(event.text)
        if isinstance(event, Notice):
            self.notices.append(event.message)
        return []

    def chunk(self, piece: Text) -> dict[str, Any]:
        """The chunk that carries one piece."""
        field, text = piece
        return self._chunk({field: text}) if self.chat else self._chunk(text)

    def encode(self, pieces: list[Text]) -> bytes:
        """`sse(self.chunk(p))` for each piece, from the chunk's text cut once per field
        (a chunk per token is the hot path of a stream)."""
        out = []
        for field, text in pieces:
            if (cut := self._cuts.get(field)) is None:
                marked = self.frame(self.chunk((field, _MARK))).split(_MARK_JSON)
                cut = self._cuts[field] = (marked[0], marked[1])
            out += [cut[0], json.dumps(text, ensure_ascii=False).encode(), cut[1]]
        return b"".join(out)

    def last(self, done: Done) -> list[dict[str, Any]]:
        """The held-back text, the chunk with the finish reason, then usage if asked."""
        out = [self.chunk(p) for p in self._answer(self._stops.flush(), final=True)]
        extra = {"r1chat": self.extension(done)}
        out.append(self._chunk({}, finish=self.finish(done), extra=extra))
        if self.call.include_usage:
            out.append({**self._head(), "choices": [], "usage": usage(done)})
        return out

    # -- whole ----------------------------------------------------------------------

    def whole(self, done: Done) -> dict[str, Any]:
        """The non-streaming answer (the events already given to `feed`)."""
        self._answer(self._stops.flush(), final=True)
        content = "".join(self.content)
        if self.chat:
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if self.calls:
                message["content"] = content or None
                message["tool_calls"] = [tool_call(c) for c in self.calls]
            if self.reasoning:
                message["reasoning_content"] = "".join(self.reasoning)
            choice: dict[str, Any] = {"index": 0, "message": message}
        else:
            choice = {"index": 0, "text": content}
        choice.update(finish_reason=self.finish(done), logprobs=None)
        kind = "chat.completion" if self.chat else "text_completion"
        return {
            **self._head(kind),
            "choices": [choice],
            "usage": usage(done),
            "r1chat": self.extension(done),
        }

    # -- parts ----------------------------------------------------------------------

    def call_deltas(self, calls: list[ToolCall]) -> list[dict[str, Any]]:
        """Calls as a stream's `tool_calls` delta, numbered on from the calls before."""
        first = len(self.calls) - len(calls)
        return [{"index": first + i, **tool_call(c)} for i, c in enumerate(calls)]

    def finish(self, done: Done) -> str:
        if self.calls and done.finish_reason == "stop":
            return "tool_calls"
        return "stop" if self.stopped else FINISH.get(done.finish_reason, "stop")

    def extension(self, done: Done) -> dict[str, Any]:
        finish = "stop_string" if self.stopped else done.finish_reason
        out: dict[str, Any] = {"finish": finish, **done.stats.to_dict()}
        if done.boxed is not None:
            out["boxed"] = done.boxed
        if self.notices:
            out["notices"] = self.notices
        return out

    def _answer(self, text: str, *, final: bool = False) -> list[Text]:
        calls: list[ToolCall] = []
        if self._reader is not None and not self.stopped:
            text, calls = self._reader.feed(text)
            if final:
                rest, more = self._reader.finish()
                text, calls = text + rest, calls + more
        if calls:
            self.calls += calls
            return [("tool_calls", self.call_deltas(calls))]
        if self.stopped or not text:
            return []
        if not final:
            text, hit = self._stops.feed(text)
            if hit:
                self.stopped = True
                self.on_stop()
            if not text:
                return []
        self.content.append(text)
        return [("content" if self.chat else "text", text)]

    def _head(self, kind: str | None = None) -> dict[str, Any]:
        if kind is None:
            kind = "chat.completion.chunk" if self.chat else "text_completion"
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    def _chunk(
        self,
        delta: dict[str, Any] | str,
        *,
        finish: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0}
        if self.chat:
            choice["delta"] = delta
        else:
            choice["text"] = delta if isinstance(delta, str) else ""
        choice.update(finish_reason=finish, logprobs=None)
        return {**self._head(), "choices": [choice], **(extra or {})}


def tool_call(call: ToolCall) -> dict[str, Any]:
    """A call in OpenAI's shape."""
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


def usage(done: Done) -> dict[str, Any]:
    s = done.stats
    completion = s.thinking_tokens + s.answer_tokens
    return {
        "prompt_tokens": s.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": s.prompt_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": s.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": s.thinking_tokens},
    }
