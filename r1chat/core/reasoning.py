"""Split a model's streamed text into reasoning and answer.

R1 writes its reasoning first and closes it with `</think>`; the opening `<think>` may
be in the prompt (then the output has none), in the output, or after some stray text.
The rule, as one function (`split_text`) and as a streaming state machine (`Splitter`)
that gives the same result however the text is cut into deltas:

- with `opened=True` (the prompt opened the reasoning), everything before the first
  `</think>` is reasoning; without it, only output that starts with `<think>` (after
  white space) has reasoning, and any other output is all answer;
- the first `<think>` inside the reasoning is dropped; the reasoning is stripped of
  surrounding white space and the answer of leading white space.
"""

from __future__ import annotations

from enum import Enum

from r1chat.core.r1 import THINK_CLOSE as CLOSE
from r1chat.core.r1 import THINK_OPEN as OPEN

THINKING, ANSWER, END = "thinking", "answer", "end"
Piece = tuple[str, str]  # (THINKING | ANSWER | END, text)


def split_text(text: str, *, opened: bool) -> tuple[str, str, bool]:
    """(reasoning, answer, closed) for a whole reply; `closed`: `</think>` was seen."""
    if not opened and not text.lstrip().startswith(OPEN):
        return "", text.lstrip(), False
    end = text.find(CLOSE)
    head = text if end == -1 else text[:end]
    if (i := head.find(OPEN)) != -1:
        head = head[:i] + head[i + len(OPEN) :]
    answer = "" if end == -1 else text[end + len(CLOSE) :].lstrip()
    return head.strip(), answer, end != -1


class State(Enum):
    DECIDING = 0  # not opened: waiting to see whether the output starts with <think>
    THINKING = 1
    ANSWER = 2


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of `text` that is a proper beginning of `tag`.

    Both tags hold their first character (`<`) once only, so the one candidate is the
    end of `text` from its last `<` within reach (this runs for every token).
    """
    i = text.rfind(tag[0], max(0, len(text) - len(tag) + 1))
    return len(text) - i if i != -1 and tag.startswith(text[i:]) else 0


class Splitter:
    """Streaming version of `split_text`; `feed()` and `finish()` return pieces."""

    __slots__ = ("_answer_started", "_hold", "_opened", "_pending", "_think_started", "state")

    def __init__(self, *, opened: bool) -> None:
        self.state = State.THINKING if opened else State.DECIDING
        self._pending = ""  # text not yet classified (may hold part of a tag)
        self._opened = False  # the one <think> to drop has been dropped
        self._think_started = False
        self._hold = ""  # reasoning white space held back (dropped if it ends the reasoning)
        self._answer_started = False

    def feed(self, text: str) -> list[Piece]:
        if self.state is State.ANSWER:
            return self._answer(text)
        self._pending += text
        if self.state is State.DECIDING:
            lead = self._pending.lstrip()
            if lead.startswith(OPEN):
                self.state = State.THINKING
            elif OPEN.startswith(lead):
                return []
            else:
                self.state = State.ANSWER
                text, self._pending = self._pending, ""
                return self._answer(text)
        return self._thinking(final=False)

    def finish(self) -> list[Piece]:
        """Flush at the end of the reply; closes the reasoning if still open."""
        if self.state is State.DECIDING:
            self.state = State.ANSWER
            text, self._pending = self._pending, ""
            return self._answer(text)
        if self.state is State.THINKING:
            return self._thinking(final=True)
        return []

    def feed_thinking(self, text: str) -> list[Piece]:
        """Text a server already marked as reasoning (no tags to look for)."""
        if self.state is State.ANSWER:
            return []
        self.state = State.THINKING
        self._opened = True
        return self._thinking_text(text)

    def feed_answer(self, text: str) -> list[Piece]:
        """Text a server already marked as answer; ends any open reasoning."""
        out = self._end() if self.state is State.THINKING else []
        self.state = State.ANSWER
        return out + self._answer(text)

    def _thinking(self, *, final: bool) -> list[Piece]:
        p = self._pending
        end = p.find(CLOSE)
        if end != -1:
            head, rest = p[:end], p[end + len(CLOSE) :]
        elif final:
            head, rest = p, ""
        else:
            keep = _partial_suffix(p, CLOSE)
            if not self._opened:
                keep = max(keep, _partial_suffix(p, OPEN))
            head, rest = p[: len(p) - keep], p[len(p) - keep :]
        if not self._opened and (i := head.find(OPEN)) != -1:
            head = head[:i] + head[i + len(OPEN) :]
            self._opened = True
        out = self._thinking_text(head)
        if end == -1 and not final:
            self._pending = rest
            return out
        out += self._end()
        return out + self._answer(rest) if rest else out

    def _thinking_text(self, text: str) -> list[Piece]:
        """Emit reasoning text, stripping white space at both ends of the reasoning."""
        if not self._think_started:
            text = text.lstrip()
            self._think_started = bool(text)
        if not text:
            return []
        text = self._hold + text
        body = text.rstrip()
        self._hold = text[len(body) :]
        return [(THINKING, body)] if body else []

    def _end(self) -> list[Piece]:
        self._pending, self._hold = "", ""
        self.state = State.ANSWER
        return [(END, "")]

    def _answer(self, text: str) -> list[Piece]:
        if not self._answer_started:
            text = text.lstrip()
            if not text:
                return []
            self._answer_started = True
        return [(ANSWER, text)]
