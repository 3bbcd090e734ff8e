"""The front ends' handle on the model: `ModelHost` sends typed commands (`host.commands`)
to the model process (`host.child`), or in tests to a `Worker` on threads of this process,
and hands what comes back (`host.outcomes`) to the front end's inbox (`put`).

Both the chat and `r1chat serve` hold one. It remembers the jobs it sent until they end.
When the model process dies (a crash inside llama.cpp, a kill), the replies it was
running fail (`Why.CRASHED`), a load in flight fails, the replies that were only waiting
go to a new process, one line goes to the log, and `HostLost` (job id 0) says that
nothing is loaded now. The next command starts a new process.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from r1chat.history.store import History
from r1chat.host.commands import Cancel, Job, Load, Quit, Reply, Start
from r1chat.host.frames import ChildProcess, note
from r1chat.host.outcomes import (
    Failed,
    HostLost,
    Item,
    JobEnded,
    LoadFailed,
    Started,
    Why,
)
from r1chat.host.worker import Worker

Put = Callable[[tuple[int, Item]], None]
"""Where a host reports `(job_id, item)` pairs: the front end's inbox."""


@dataclass
class _Sent:
    command: Job
    started: bool = False  # a reply left the queue (its load or generation began)
    ended: threading.Event = field(default_factory=threading.Event)


class _Transport(Protocol):
    @property
    def pid(self) -> int | None: ...

    def send(self, command: Any, *, start: bool = True) -> bool: ...

    def stop(self, quit_command: Any, timeout: float = ...) -> None: ...


class ModelHost:
    """See the module's docstring. `wake` (called from the thread that delivers items)
    says a job ended, or an item came after its job, for a front end that drains its
    inbox only while jobs are out."""

    def __init__(self, put: Put, wake: Callable[[], None] | None = None) -> None:
        self._put, self._wake = put, wake
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._sent: dict[int, _Sent] = {}
        self._transport: _Transport
        self.log_path: Callable[[], Path] = lambda: Path("r1chat.log")

    @classmethod
    def in_process(
        cls,
        put: Put,
        start: Start,
        log_path: Callable[[], Path],
        wake: Callable[[], None] | None = None,
    ) -> ModelHost:
        """The model in a child process, its output and how it ended in `log_path()`."""
        host = cls(put, wake)
        host.log_path = log_path
        host._transport = ChildProcess(
            "r1chat.host.child", [], log_path, host._frame, host._lost, hello=start
        )
        return host

    @classmethod
    def in_thread(
        cls,
        put: Put,
        start: Start,
        wake: Callable[[], None] | None = None,
        history: History | None = None,
    ) -> ModelHost:
        """The model on threads of this process (tests, benchmarks: an engine of their
        own through `start.open_engine`); replies saved through `history`."""
        host = cls(put, wake)
        host._transport = _InThread(lambda: Worker(start, lambda i: host._frame([i]), history))
        return host

    @property
    def pid(self) -> int | None:
        """The model process's pid (None: none running, or on threads)."""
        return self._transport.pid

    def next_id(self) -> int:
        return next(self._ids)

    def send(self, command: Job) -> threading.Event:
        """Send a job (its items follow on the inbox); set once it has ended."""
        sent = _Sent(command)
        with self._lock:
            self._sent[command.job] = sent
        if (problem := self._try(lambda: self._transport.send(command))) is not None:
            message = f"cannot start the model process: {problem}"
            failure = Failed(message) if isinstance(command, Reply) else LoadFailed(message)
            self._ended(command.job, failure)
        return sent.ended

    def cancel(self, job_id: int) -> None:
        """Stop job `job_id` (a reply ends as stopped; one still waiting never starts)."""
        self._try(lambda: self._transport.send(Cancel(job_id), start=False))

    def running(self) -> tuple[int, int]:
        """(replies running, replies waiting)."""
        with self._lock:
            replies = [s for s in self._sent.values() if isinstance(s.command, Reply)]
        running = sum(1 for s in replies if s.started)
        return running, len(replies) - running

    def stop(self, timeout: float = 3.0) -> None:
        """Stop every job (replies end as stopped, and are saved so), then the process."""
        self._transport.stop(Quit(), timeout=timeout)

    # -- what comes back -----------------------------------------------------------------

    def _try(self, send: Callable[[], object]) -> str | None:
        try:
            send()
        except OSError as e:
            return str(e)
        return None

    def _frame(self, items: list[tuple[int, Item]]) -> None:
        woken = False
        for job_id, item in items:
            with self._lock:
                sent = self._sent.get(job_id)
                if isinstance(item, JobEnded):
                    self._sent.pop(job_id, None)
                elif isinstance(item, Started) and sent is not None:
                    sent.started = True
            self._put((job_id, item))
            if isinstance(item, JobEnded) and sent is not None:
                sent.ended.set()
            woken = woken or sent is None or isinstance(item, JobEnded)
        if woken and self._wake is not None:
            self._wake()

    def _ended(self, job_id: int, item: Item | None) -> None:
        """End a job here (its process is gone): `item`, then `JobEnded`."""
        with self._lock:
            sent = self._sent.pop(job_id, None)
        if item is not None:
            self._put((job_id, item))
        self._put((job_id, JobEnded()))
        if sent is not None:
            sent.ended.set()
        if self._wake is not None:
            self._wake()

    def _lost(self, pid: int, how: str) -> None:
        """The model process died: see the module's docstring."""
        log = self.log_path()
        with self._lock:
            sent = list(self._sent.items())
        waiting = {i: s.command for i, s in sent if isinstance(s.command, Reply) and not s.started}
        gone = [(i, s.command) for i, s in sent if i not in waiting]
        running = sum(1 for _, c in gone if isinstance(c, (Load, Reply)))
        note(
            log,
            f"r1chat: the model process (pid {pid}) {how}, with {running} job(s) running "
            f"and {len(waiting)} waiting",
        )
        for job_id, command in gone:
            if isinstance(command, Load):
                self._ended(job_id, LoadFailed(f"the model process {how} while loading; see {log}"))
            elif isinstance(command, Reply):
                message = f"the model process {how}; see {log}"
                self._ended(job_id, Failed(message, Why.CRASHED, how))
            else:
                self._ended(job_id, None)
        self._put((0, HostLost(f"the model process {how}; see {log}")))
        if self._wake is not None:
            self._wake()
        for command in waiting.values():  # a new process answers them
            self.send(command)


class _InThread:
    """A `Worker` on threads of this process, as a transport: made on the first command
    and again after `stop`, as a model process would be."""

    pid: int | None = None

    def __init__(self, make: Callable[[], Worker]) -> None:
        self._make = make
        self._worker: Worker | None = None

    def send(self, command: Any, *, start: bool = True) -> bool:
        if self._worker is None:
            if not start:
                return False
            self._worker = self._make()
        self._worker.handle(command)
        return True

    def stop(self, quit_command: Any, timeout: float = 3.0) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop(timeout)
