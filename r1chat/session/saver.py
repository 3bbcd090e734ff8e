"""Saving a streaming reply to History: about once a second, then completely."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from r1chat.core.errors import R1ChatError
from r1chat.core.events import AnswerDelta, Done, Event, Notice, ThinkingDelta
from r1chat.history.store import History

if TYPE_CHECKING:
    from r1chat.session.items import Item

SAVE_INTERVAL_S = 1.0


class Saver:
    """Writes a streaming reply to History at most once a second, then completely."""

    def __init__(
        self,
        history: History,
        message_id: int | None,
        put: Callable[[tuple[int, Item]], None],
        job_id: int,
    ) -> None:
        self.history, self.message_id, self.put, self.job_id = history, message_id, put, job_id
        self.reasoning: list[str] = []
        self.answer: list[str] = []
        self.last = time.monotonic()
        self.dirty = False
        self.failed = False

    def feed(self, event: Event) -> None:
        if isinstance(event, ThinkingDelta):
            self.reasoning.append(event.text)
        elif isinstance(event, AnswerDelta):
            self.answer.append(event.text)
        else:
            return
        self.dirty = True
        now = time.monotonic()
        if now - self.last >= SAVE_INTERVAL_S:
            self.last = now
            self.dirty = False
            self._save(content="".join(self.answer), reasoning="".join(self.reasoning))

    def finish(self, done: Done) -> None:
        self._save(
            content=done.content,
            reasoning=done.reasoning,
            stats=done.stats.to_dict(),
            finish_reason=done.finish_reason,
            thinking_stopped_by=done.stats.thinking_stopped_by,
        )

    def _save(self, **fields: Any) -> None:
        if self.message_id is None or self.failed:
            return
        try:
            self.history.update_message(self.message_id, **fields)
        except R1ChatError as e:
            self.failed = True  # say it once; the reply goes on
            self.put((self.job_id, Notice(f"could not save this reply: {e}")))
