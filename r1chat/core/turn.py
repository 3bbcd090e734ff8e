"""One reply, start to finish: engine deltas in, front-end events out.

This is where the reasoning is split from the answer, tokens and times are counted,
and the reasoning guards act: a thinking budget and a loop guard close the reasoning
by injecting `</think>` (the model then answers); an answer that loops is stopped.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from r1chat.core.errors import R1ChatError
from r1chat.core.events import (
    AnswerDelta,
    Channel,
    Delta,
    Done,
    Event,
    Notice,
    PromptProgress,
    Stats,
    ThinkingDelta,
    ThinkingDone,
)
from r1chat.core.loopguard import ANSWER_RULE, THINKING_RULE, LoopDetector
from r1chat.core.r1 import THINK_CLOSE
from r1chat.core.reasoning import ANSWER, END, THINKING, Piece, Splitter, State
from r1chat.core.request import Control, Request

WRAP_UP = "\n\nConsidering the limited time, I will answer now.\n"
CLOSE_REASONING = WRAP_UP + THINK_CLOSE + "\n\n"


class Source(Protocol):
    """What a turn needs of an engine (`r1chat.engine.base.Engine` has it all)."""

    finish_reason: str

    def opens_thinking(self, request: Request) -> bool: ...

    def stream(self, request: Request, control: Control) -> Iterator[Delta | PromptProgress]: ...


def answer_room(max_tokens: int) -> int:
    """The tokens of `max_tokens` kept for the answer when no thinking budget is set: a
    quarter, at least 64, at most half (the reasoning is closed in time to leave them);
    none under 64 (too few to close the reasoning and answer)."""
    return 0 if max_tokens < 64 else min(max(64, max_tokens // 4), max_tokens // 2)


@dataclass(frozen=True, slots=True)
class Guards:
    """Reasoning controls: `think_budget` tokens at most; cut loops when `loop_guard`;
    with `answer_room` and no budget, a `max_tokens` cap closes the reasoning in time to
    leave `answer_room(max_tokens)` tokens for the answer."""

    think_budget: int | None = None
    loop_guard: bool = True
    answer_room: bool = True


def run_turn(
    engine: Source, request: Request, control: Control, guards: Guards | None = None
) -> Iterator[Event]:
    """Generate one reply and yield its events; the last one is always `Done`."""
    guards = guards or Guards()
    turn = _Turn(engine, request, control, guards)
    return turn.events()


class _Turn:
    def __init__(self, engine: Source, request: Request, control: Control, guards: Guards):
        self.engine, self.request, self.control, self.guards = engine, request, control, guards
        self.splitter = Splitter(opened=engine.opens_thinking(request))
        self.stats = Stats()
        self.reasoning: list[str] = []
        self.answer: list[str] = []
        self.start = time.perf_counter()
        self.first_token: float | None = None
        self.thinking_done = False
        self.undecided_tokens = 0
        self.finish: str | None = None
        self.budget, self.budget_reason = guards.think_budget, "budget"
        cap = request.sampling.max_tokens
        room = answer_room(cap) if cap is not None and guards.answer_room else 0
        if self.budget is None and cap is not None and room:
            self.budget, self.budget_reason = cap - room, "answer_room"
        self.think_loop = LoopDetector(THINKING_RULE) if guards.loop_guard else None
        self.answer_loop = LoopDetector(ANSWER_RULE) if guards.loop_guard else None

    def events(self) -> Iterator[Event]:
        try:
            for item in self.engine.stream(self.request, self.control):
                if isinstance(item, PromptProgress):
                    self.stats.prompt_tokens = item.total
                    self.stats.cached_tokens = item.cached
                    yield item
                    continue
                if self.first_token is None:
                    self.first_token = time.perf_counter()
                before = self.splitter.state
                if item.channel is Channel.RAW:
                    pieces = self.splitter.feed(item.text)
                elif item.channel is Channel.THINKING:
                    pieces = self.splitter.feed_thinking(item.text)
                else:
                    pieces = self.splitter.feed_answer(item.text)
                self._count(item.channel, before, pieces, item.tokens)
                if pieces:
                    yield from self._events(pieces)
                if not item.injected and (notice := self._guard(item.text)) is not None:
                    yield notice
        except R1ChatError as e:
            if self.first_token is None:
                raise
            yield Notice(str(e))
            self.finish = "error"
        max_tokens = self.request.sampling.max_tokens
        cut = _cut_by(self.finish or self.engine.finish_reason, self.stats, max_tokens)
        if cut and not self.thinking_done and self.reasoning and not self.stats.thinking_stopped_by:
            self.stats.thinking_stopped_by = cut  # the reasoning never closed: say why
        yield from self._events(self.splitter.finish())
        if not self.thinking_done:
            yield self._thinking_done()
        if cut is not None:
            yield Notice(_cut_notice(cut, max_tokens, bool("".join(self.answer).strip())))
        yield self._done()

    def _count(self, channel: Channel, before: State, pieces: list[Piece], tokens: int) -> None:
        """Attribute a delta's tokens to the reasoning or the answer."""
        s = self.stats
        if channel is Channel.THINKING:
            s.thinking_tokens += tokens
        elif before is State.ANSWER or channel is Channel.ANSWER:
            s.answer_tokens += tokens
        elif self.splitter.state is State.THINKING or any(k == END for k, _ in pieces):
            s.thinking_tokens += tokens + self.undecided_tokens
            self.undecided_tokens = 0
        elif self.splitter.state is State.ANSWER:
            s.answer_tokens += tokens + self.undecided_tokens
            self.undecided_tokens = 0
        else:
            self.undecided_tokens += tokens

    def _events(self, pieces: list[Piece]) -> list[Event]:
        """The events for the splitter's pieces (a list: this runs once per token)."""
        out: list[Event] = []
        for kind, text in pieces:
            if kind == THINKING:
                self.reasoning.append(text)
                out.append(ThinkingDelta(text))
            elif kind == ANSWER:
                if not self.thinking_done:
                    out.append(self._thinking_done())
                self.answer.append(text)
                out.append(AnswerDelta(text))
            else:
                out.append(self._thinking_done())
        return out

    def _thinking_done(self) -> ThinkingDone:
        self.thinking_done = True
        start = self.first_token or time.perf_counter()
        seconds = time.perf_counter() - start if self.stats.thinking_tokens else 0.0
        self.stats.thinking_s = seconds
        stats = self.stats
        return ThinkingDone(
            seconds, stats.thinking_tokens, stats.thinking_stopped_by, skipped=not self.reasoning
        )

    def _guard(self, text: str) -> Notice | None:
        """Apply the budget and the loop guards after one generated delta."""
        s = self.stats
        if not self.thinking_done and self.splitter.state is State.THINKING:
            if s.thinking_stopped_by:
                return None
            if self.budget is not None and s.thinking_tokens >= self.budget:
                s.thinking_stopped_by = self.budget_reason
                self.control.inject(CLOSE_REASONING)
            elif self.think_loop is not None and self.think_loop.push(text):
                s.thinking_stopped_by = "loop"
                self.control.inject(CLOSE_REASONING)
                return Notice(
                    f"the reasoning was repeating itself; cut after {s.thinking_tokens} tokens"
                )
        elif self.answer_loop is not None and self.finish is None and self.answer_loop.push(text):
            self.finish = "loop"
            self.control.cancel()
            return Notice(
                f"the answer was repeating itself; stopped after {s.answer_tokens} tokens"
            )
        return None

    def _done(self) -> Done:
        s = self.stats
        end = time.perf_counter()
        s.total_s = end - self.start
        if self.first_token is not None:
            s.time_to_first_token_s = self.first_token - self.start
            decode = end - self.first_token
            generated = s.thinking_tokens + s.answer_tokens
            s.tokens_per_s = generated / decode if decode > 0 and generated > 1 else 0.0
        content = "".join(self.answer)
        finish = self.finish or self.engine.finish_reason
        return Done("".join(self.reasoning), content, finish, s, boxed=extract_boxed(content))


def _cut_by(finish: str, stats: Stats, max_tokens: int | None) -> str | None:
    """What ended a reply that did not end by itself and has no notice yet: "max_tokens",
    "context" or "cancel" (the loop guard and errors say so as they happen)."""
    if finish == "cancelled":
        return "cancel"
    if finish != "length":
        return None
    generated = stats.thinking_tokens + stats.answer_tokens
    return "max_tokens" if max_tokens is not None and generated >= max_tokens else "context"


def _cut_notice(cut: str, max_tokens: int | None, answered: bool) -> str:
    """One line for a cut reply: what cut it and what to do."""
    if cut == "cancel":
        return "stopped: the answer is incomplete" if answered else "stopped before any answer"
    if cut == "max_tokens":
        where, fix = f"max tokens ({max_tokens:,})", "raise max tokens (--max-tokens)"
    else:
        where = "the end of the context"
        fix = "raise the context (--ctx), start a new chat, or set a thinking budget"
    if answered:
        return f"the answer was cut off at {where}; {fix} for the whole answer"
    return f"the reply reached {where} while still reasoning, so there is no answer; {fix}"


_BOXED = re.compile(r"\\boxed\{")


def extract_boxed(text: str) -> str | None:
    """The contents of the last `\\boxed{...}` (braces balanced), if any."""
    starts = [m.end() for m in _BOXED.finditer(text)]
    for start in reversed(starts):
        depth, i = 1, start
        while i < len(text):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    return text[start:i]
            i += 1
    return None
