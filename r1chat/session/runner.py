"""What runs the chat's model: a `ModelHost` (r1chat.host), in a child process for the
chat (`in_child_process`) or on threads of this process for tests (`in_thread`), with
replies saved to the chat's History as they stream. `tui/command.py` chooses it."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from r1chat.config import paths
from r1chat.history.store import History
from r1chat.host.commands import EngineFactory, Start
from r1chat.host.model_host import ModelHost
from r1chat.host.outcomes import Item

Inbox = queue.SimpleQueue[tuple[int, Item]]
RunnerFactory = Callable[[Inbox, History, Callable[[], None]], ModelHost]
"""Makes the model host for a chat from its inbox (a queue the screen drains), its
History and a `wake` callback (called from any thread when an item should be shown
without waiting for the next drain)."""


@dataclass(frozen=True)
class ReplyJob:
    """A reply asked of the chat's host: `cancel()` stops it (what came is kept, saved as
    stopped); `ended` is set once its job is over."""

    id: int
    ended: threading.Event
    host: ModelHost

    def cancel(self) -> None:
        self.host.cancel(self.id)


def engine_log() -> Path:
    """Where the chat's model process's own output (and how it ended) goes."""
    return paths.log_dir() / "engine.log"


def in_child_process(inbox: Inbox, history: History, wake: Callable[[], None]) -> ModelHost:
    """The chat's runner: the model in a child process, which saves replies itself."""
    from r1chat.launch.engines import open_engine

    start = Start(open_engine, history.path, join_text=True)
    return ModelHost.in_process(inbox.put, start, engine_log, wake)


def in_thread(open_engine: EngineFactory) -> RunnerFactory:
    """A runner with the model on threads of this process, opened by `open_engine`
    (tests, benchmarks: an engine of their own)."""
    return lambda inbox, history, wake: ModelHost.in_thread(
        inbox.put, Start(open_engine), wake, history
    )


def log_to_file() -> None:
    """Send r1chat's log (tracebacks of bugs) to the log folder, never the screen."""
    import logging

    root = logging.getLogger("r1chat")
    if root.handlers:
        return
    try:
        directory = paths.log_dir()
        directory.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(directory / "tui.log", encoding="utf-8")
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root.addHandler(handler)
    root.propagate = False
