"""What the chat's session drives: a `Runner` owns the engine and runs its jobs.

`EngineThread` (r1chat.session.worker) runs them on a thread of this process, and
`EngineProcess` (r1chat.session.process) in a child process; both put `(job_id, item)`
pairs (r1chat.session.items) on the inbox they were made with. `tui/command.py` chooses
one; tests choose the thread with an engine of their own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from r1chat.config.settings import Settings
from r1chat.core.messages import Message
from r1chat.core.overflow import Overflow
from r1chat.core.request import Control, Request
from r1chat.core.turn import Guards
from r1chat.history.store import History
from r1chat.session.items import Inbox


@dataclass
class ReplyJob:
    """A reply asked of a runner: `control` stops it; `ended` is set once it is over."""

    id: int
    request: Request
    guards: Guards
    message_id: int | None  # the History row the reply is saved into as it streams
    overflow: Overflow = field(default_factory=Overflow)
    control: Control = field(default_factory=Control)
    ended: threading.Event = field(default_factory=threading.Event)


class Runner(Protocol):
    """Runs the engine's jobs in order; each returns its job id at once and reports on
    the inbox (`Loading`/`Loaded`/`LoadFailed`, the turn's events, `ContextUsed`,
    `JobEnded`...)."""

    def load(self, settings: Settings) -> int:
        """Open the model `settings` name (closing the one before)."""
        ...

    def reply(
        self,
        request: Request,
        guards: Guards,
        message_id: int | None,
        overflow: Overflow | None = None,
    ) -> ReplyJob:
        """Generate a reply, saving it into History row `message_id` as it streams."""
        ...

    def measure(
        self, messages: tuple[Message, ...], request: Request, overflow: Overflow | None = None
    ) -> int:
        """Report the context the conversation `messages` fills (`ContextUsed`)."""
        ...

    def stop(self, timeout: float = 3.0) -> None:
        """Stop the running reply (saved as stopped) and close the engine."""
        ...


RunnerFactory = Callable[[Inbox, History, Callable[[], None]], Runner]
"""Makes the runner for a chat from its inbox, its History and a `wake` callback (called
from any thread when an item should be shown without waiting for the next drain)."""
