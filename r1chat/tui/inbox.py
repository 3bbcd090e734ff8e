"""How the engine's items reach a screen: a thread-safe queue drained on a short timer.

The engine side (a reader thread for the model process, or the engine thread itself)
puts `(job_id, item)` pairs on `queue` (a SimpleQueue: putting is cheap and never
blocks). While a job is out, a timer drains the queue every `DRAIN_FAST_S`
(`DRAIN_SLOW_S` when tokens pour in), joins runs of deltas (`batch`) and hands each
item to the screen's handler, so the widgets' work per batch does not depend on how
many tokens it holds. `wake()` (from any thread) drains at once: a job ended.
"""

from __future__ import annotations

import queue
from collections.abc import Awaitable, Callable

from textual.css.query import NoMatches
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget

from r1chat.host.outcomes import AnswerChunk, Item, ThinkingChunk, batch

DRAIN_FAST_S = 1 / 30
"""Delay before the next batch while tokens trickle in (a slow model: show each promptly)."""
DRAIN_SLOW_S = 1 / 15
"""Delay before the next batch while tokens pour in: the UI's work per batch hardly
depends on its size, so a fast stream costs it a fixed 15 frames a second."""
FAST_BATCH_TOKENS = 16


class Inbox:
    class Wake(Message):
        """A job ended (posted from another thread): the owner calls `drain_soon()`."""

    def __init__(
        self,
        owner: Widget,
        handle: Callable[[int, Item], Awaitable[None]],
        after: Callable[[], None],
    ) -> None:
        """`handle` takes each item; `after` runs once per drain (ticking live titles)."""
        self.queue: queue.SimpleQueue[tuple[int, Item]] = queue.SimpleQueue()
        self.outstanding = 0
        """Jobs started whose `JobEnded` has not been handled yet."""
        self._owner, self._handle, self._after = owner, handle, after
        self._timer: Timer | None = None

    def job_started(self) -> None:
        self.outstanding += 1
        self._schedule(DRAIN_FAST_S)

    def job_ended(self) -> None:
        self.outstanding = max(0, self.outstanding - 1)

    def wake(self) -> None:
        """Thread-safe: ask the owner to drain now."""
        self._owner.post_message(self.Wake())

    async def drain_soon(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        await self._tick()

    def _schedule(self, delay: float) -> None:
        if self._timer is None:
            self._timer = self._owner.set_timer(delay, self._tick)

    async def _tick(self) -> None:
        self._timer = None
        try:
            tokens = await self.drain()
        except NoMatches:  # the app is closing and its widgets are gone
            return
        if self.outstanding > 0 or not self.queue.empty():
            self._schedule(DRAIN_SLOW_S if tokens >= FAST_BATCH_TOKENS else DRAIN_FAST_S)

    async def drain(self) -> int:
        """Hand everything queued to the handler, in batches; returns the tokens handled."""
        items: list[tuple[int, Item]] = []
        get = self.queue.get_nowait
        try:
            while True:
                items.append(get())
        except queue.Empty:
            pass
        tokens = 0
        for job_id, item in batch(items):
            if isinstance(item, (ThinkingChunk, AnswerChunk)):
                tokens += item.count
            await self._handle(job_id, item)
        self._after()
        return tokens
