"""Saving a streaming reply to History: about once a second, then completely; a save that
fails (a full disk, say) is kept and retried until it lands, and what never did is named."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from r1chat.core.errors import R1ChatError
from r1chat.core.events import AnswerDelta, Done, Event, ThinkingDelta
from r1chat.history.store import History
from r1chat.host.outcomes import SaveNotice

if TYPE_CHECKING:
    from r1chat.host.outcomes import Item

SAVE_INTERVAL_S = 1.0


class Backlog:
    """The latest unsaved state of each reply whose save failed, retried on every save
    and every `retry()` (the host calls it each second while any is left, and at exit).
    Notices go out through `put` with job id 0: not tied to a reply on screen. Safe to
    use from several threads (one write at a time)."""

    def __init__(self, history: History, put: Callable[[tuple[int, Item]], None]) -> None:
        self.history, self.put = history, put
        self.pending: dict[int, dict[str, Any]] = {}  # message id -> fields to write
        self._lock = threading.RLock()

    def save(self, message_id: int, fields: dict[str, Any]) -> bool:
        """Write `fields` (with what is still unsaved of this reply); True if it landed."""
        with self._lock:
            return self._save(message_id, fields)

    def _save(self, message_id: int, fields: dict[str, Any]) -> bool:
        merged = {**self.pending.get(message_id, {}), **fields}
        try:
            self.history.update_message(message_id, **merged)
        except R1ChatError as e:
            if message_id not in self.pending:
                self.put(
                    (
                        0,
                        SaveNotice(
                            f"could not save a reply: {e}; it is kept and saving "
                            "is retried every second",
                            problem=True,
                        ),
                    )
                )
            self.pending[message_id] = merged
            return False
        if self.pending.pop(message_id, None) is not None:
            self.put((0, SaveNotice("the reply that could not be saved is saved now")))
        return True

    def retry(self) -> None:
        with self._lock:
            for message_id in list(self.pending):
                self._save(message_id, {})

    def give_up(self) -> list[str]:
        """At exit: one last try, then what was lost, one line per reply (also sent out)."""
        self.retry()
        lost = [
            f"lost from the history: a reply ({len(f.get('content') or '')} characters of "
            f"answer, {len(f.get('reasoning') or '')} of reasoning) that could not be saved"
            for f in self.pending.values()
        ]
        for line in lost:
            self.put((0, SaveNotice(line, problem=True)))
        return lost


class Saver:
    """Writes one streaming reply at most once a second, then completely."""

    def __init__(self, backlog: Backlog, message_id: int | None) -> None:
        self.backlog, self.message_id = backlog, message_id
        self.reasoning: list[str] = []
        self.answer: list[str] = []
        self.last = time.monotonic()

    def feed(self, event: Event) -> None:
        if isinstance(event, ThinkingDelta):
            self.reasoning.append(event.text)
        elif isinstance(event, AnswerDelta):
            self.answer.append(event.text)
        else:
            return
        now = time.monotonic()
        if now - self.last >= SAVE_INTERVAL_S:
            self.last = now
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
        if self.message_id is not None:
            self.backlog.save(self.message_id, fields)
