"""One reply as every dialect writes it: `ReplyState` is fed the turn's events and gives
the pieces that go out (reasoning, answer text with the client's stop strings cut, tool
calls read from the answer), and keeps what a whole answer and its end need (the texts,
the calls, the notices, how it finished). Dialects' writers (`serve.dialects`) put the
pieces in their own frames; nothing here knows a wire format."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from r1chat.core.events import AnswerDelta, Done, Notice, ThinkingDelta
from r1chat.core.messages import ToolCall
from r1chat.core.tools import CallReader
from r1chat.serve.call import Call

REASONING, TEXT, CALLS = "reasoning", "text", "calls"
Piece = tuple[str, Any]
"""What a reply adds: (`REASONING` or `TEXT`, its text), or (`CALLS`, the tool calls
that just ended)."""
CUT_CALL = "a tool call was cut short by max_tokens and left out; raise max_tokens"


class Stops:
    """Cuts text at the first of the client's stop strings, holding back what may be the
    start of one until the next text says."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = stops
        self.hit: str | None = None  # the stop string reached
        self._held = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """The text that may go out now, and whether a stop string was reached."""
        if not self.stops:
            return text, False
        text = self._held + text
        hits = [(i, s) for s in self.stops if (i := text.find(s)) != -1]
        if hits:
            self._held = ""
            at, self.hit = min(hits)
            return text[:at], True
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


class ReplyState:
    """See the module's docstring. `on_stop` ends the generation when a stop string is
    reached."""

    def __init__(self, call: Call, on_stop: Callable[[], None]) -> None:
        self.call, self.on_stop = call, on_stop
        self.reasoning: list[str] = []
        self.content: list[str] = []
        self.calls: list[ToolCall] = []
        self.notices: list[str] = []
        self.stopped = False  # a stop string was reached (`stop_string`: which)
        self._stops = Stops(call.stop)
        tools = call.request.tools
        self._reader = CallReader() if tools is not None and tools.callable else None

    def feed(self, event: object) -> list[Piece]:
        """The pieces one event adds (none for most events)."""
        if isinstance(event, ThinkingDelta):
            if self.stopped or not event.text or not self.call.show_reasoning:
                return []
            self.reasoning.append(event.text)
            return [(REASONING, event.text)]
        if isinstance(event, AnswerDelta):
            return self._answer(event.text)
        if isinstance(event, Notice):
            self.notices.append(event.message)
        return []

    def flush(self) -> list[Piece]:
        """At the end: the text held back for a stop string, calls not yet closed."""
        return self._answer(self._stops.flush(), final=True)

    @property
    def stop_string(self) -> str | None:
        return self._stops.hit

    def finish(self, done: Done) -> str:
        """How the reply ended, for a client: `tool_calls`, `stop_string`, or the turn's
        own reason (`stop`, `length`, `loop`, `cancelled`, `error`)."""
        if self.calls and done.finish_reason == "stop":
            return "tool_calls"
        return "stop_string" if self.stopped else done.finish_reason

    def extension(self, done: Done) -> dict[str, Any]:
        """The `r1chat` object a reply's end carries: how it ended, the reasoning's time and
        tokens, what cut it, a `\\boxed{}` answer, notices."""
        finish = "stop_string" if self.stopped else done.finish_reason
        out: dict[str, Any] = {"finish": finish, **done.stats.to_dict()}
        if done.boxed is not None:
            out["boxed"] = done.boxed
        if self.notices:
            out["notices"] = self.notices
        return out

    def _answer(self, text: str, *, final: bool = False) -> list[Piece]:
        calls: list[ToolCall] = []
        if self._reader is not None and not self.stopped:
            text, calls = self._reader.feed(text)
            if final:
                rest, more = self._reader.finish()
                text, calls = text + rest, calls + more
                if self._reader.cut:
                    self.notices.append(CUT_CALL)
        if calls:
            self.calls += calls
            return [(CALLS, calls)]
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
        return [(TEXT, text)]
