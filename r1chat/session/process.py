"""The engine in a child process (the chat's `Runner`), as `EngineThread` runs it here.

Python runs one thread at a time (the GIL). The UI thread's work (layout, painting,
rendering Markdown) and the generation loop's Python work (sampling, splitting, guards)
would take turns; with a fast model every millisecond the UI spends is a millisecond
generation waits. So the chat runs the engine in a child process
(`python -m r1chat.session.child`, through `session.childproc`): an `EngineThread` there,
its inbox forwarded in batched frames, which the reader thread puts on the app's inbox.
The app sees the same jobs and items either way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from r1chat.config import paths
from r1chat.config.settings import Settings
from r1chat.core.messages import Message
from r1chat.core.overflow import Overflow
from r1chat.core.request import Control, Request
from r1chat.core.turn import Guards
from r1chat.history.store import History
from r1chat.session.childproc import ChildProcess, note
from r1chat.session.items import EngineLost, Failed, Inbox, Item, JobEnded, LoadFailed
from r1chat.session.runner import ReplyJob
from r1chat.session.worker import log


def engine_log() -> Path:
    """Where the model process's own output (and how it ended) goes."""
    return paths.log_dir() / "engine.log"


class _RemoteControl(Control):
    """A job's control whose `cancel()` also tells the child process."""

    def __init__(self, send_cancel: Callable[[], None]) -> None:
        super().__init__()
        self._send_cancel = send_cancel

    def cancel(self) -> None:
        if not self.cancelled:
            super().cancel()
            self._send_cancel()


class EngineProcess:
    """`EngineThread`'s interface, with the engine in a child process.

    If the child dies (a crash inside llama.cpp, say), the jobs it had are failed with
    a readable message and the next `load` starts a new one.
    """

    def __init__(
        self,
        inbox: Inbox,
        history_path: Path,
        wake: Callable[[], None] | None = None,
    ) -> None:
        """`wake` is called (on the reader thread) when a job's result arrives, so the
        app need not wait for its next drain to show it."""
        self.inbox = inbox
        self._wake = wake
        self._ids = iter(range(1, 1 << 62))
        self._lock = threading.Lock()
        self._pending: dict[int, str] = {}  # job id -> "load" | "reply" | "measure"
        self._child = ChildProcess(
            "r1chat.session.child", [str(history_path)], engine_log, self._frame, self._lost
        )

    @property
    def pid(self) -> int | None:
        return self._child.pid

    def _send(self, command: tuple[Any, ...], job_id: int | None = None, kind: str = "") -> None:
        with self._lock:
            if job_id is not None:
                self._pending[job_id] = kind
        try:
            self._child.send(command, start=command[0] not in ("cancel", "quit"))
        except OSError as e:
            log.error("engine process: %s", e)
            if job_id is not None:
                self._fail(job_id, kind, f"cannot start the model process: {e}")

    def _fail(self, job_id: int, kind: str, message: str) -> None:
        with self._lock:
            self._pending.pop(job_id, None)
        self.inbox.put((job_id, LoadFailed(message) if kind == "load" else Failed(message)))
        self.inbox.put((job_id, JobEnded()))
        if self._wake is not None:
            self._wake()

    def _frame(self, items: list[tuple[int, Item]]) -> None:
        ended = False
        for job_id, item in items:
            with self._lock:
                late = job_id not in self._pending  # after its job (a prefill's)
                if isinstance(item, JobEnded):
                    self._pending.pop(job_id, None)
            ended = ended or isinstance(item, JobEnded) or late
            self.inbox.put((job_id, item))
        if ended and self._wake is not None:
            self._wake()

    def _lost(self, pid: int, how: str) -> None:
        message = f"the model process {how}; see {engine_log()}"
        with self._lock:
            pending = list(self._pending.items())
        note(
            engine_log(),
            f"r1chat: the model process (pid {pid}) {how}, with {len(pending)} job(s) running",
        )
        for job_id, kind in pending:
            self._fail(job_id, kind, message)
        self.inbox.put((0, EngineLost(message)))
        if self._wake is not None:
            self._wake()

    # -- the EngineThread interface ---------------------------------------------------

    def load(self, settings: Settings) -> int:
        job_id = next(self._ids)
        self._send(("load", job_id, settings), job_id, "load")
        return job_id

    def reply(
        self,
        request: Request,
        guards: Guards,
        message_id: int | None,
        overflow: Overflow | None = None,
    ) -> ReplyJob:
        job_id = next(self._ids)
        control = _RemoteControl(lambda: self._send(("cancel", job_id)))
        overflow = overflow or Overflow()
        job = ReplyJob(job_id, request, guards, message_id, overflow, control=control)
        self._send(("reply", job_id, request, guards, message_id, overflow), job_id, "reply")
        return job

    def measure(
        self, messages: tuple[Message, ...], request: Request, overflow: Overflow | None = None
    ) -> int:
        job_id = next(self._ids)
        command = ("measure", job_id, messages, request, overflow or Overflow())
        self._send(command, job_id, "measure")
        return job_id

    def stop(self, timeout: float = 3.0) -> None:
        """Stop the running reply (it is saved as stopped), then the child."""
        self._child.stop(timeout=timeout)


def in_child_process(inbox: Inbox, history: History, wake: Callable[[], None]) -> EngineProcess:
    """The chat's runner (a `RunnerFactory`): the model in a child process."""
    return EngineProcess(inbox, history.path, wake)
