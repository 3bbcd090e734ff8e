"""The model process behind `r1chat serve`, and the jobs sent to it.

The engine lives in a child process (`serve.child`): a crash inside llama.cpp fails the
reply in progress (a 500, or an error event on a stream), the server logs it in one line
and goes on, and the next job starts a new process that loads the model again; jobs that
were only waiting are sent to it unharmed. Jobs are sent as they arrive; the child runs
them in order and says when each starts, so a queue that is full (`max_queue` waiting)
answers 429. A `Job` carries one request's events from the child to the event loop.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from r1chat.config import paths
from r1chat.config.settings import Settings
from r1chat.core.errors import R1ChatError
from r1chat.core.events import Done, EngineInfo, Event
from r1chat.core.request import DEFAULT_CTX
from r1chat.serve.fields import BadRequest
from r1chat.serve.items import Accepted, Failed, Rendered, Started
from r1chat.serve.requests import Call
from r1chat.session.childproc import ChildProcess, note
from r1chat.session.items import JobEnded, Loaded, LoadFailed

Item = Event | Accepted | Failed | Rendered
"""What a job hands the event loop: the reply's events, or why there is none."""


def serve_log() -> Path:
    """The model process's own output, and how it ended."""
    return paths.log_dir() / "serve.log"


class Job:
    """One request's reply, from the model process to the event loop.

    The loop is woken once per batch, not per token (a whole reply: once, at its end).
    """

    def __init__(self, call: Call, model: str, what: str, loop: asyncio.AbstractEventLoop) -> None:
        self.call, self.model, self.what = call, model, what  # what: "POST /v1/..."
        self.id = 0  # given by `Models.submit`
        self.keep_alive: float | None = None  # seconds the model stays after it (Ollama's)
        self.reply: Any = None  # how its answer is written (serve.replies.Reply)
        self.client_gone = False
        self.started = False  # the model process began it
        self.ended = False  # its last item came
        self.cancelled = False
        self.on_cancel: Callable[[], None] = lambda: None
        self._loop = loop
        self._items: deque[Item] = deque()
        self._ready = asyncio.Event()
        self._lock = threading.Lock()
        self._waiting = False  # the loop waits in `items()` for the model process

    def _wanted(self, item: Item) -> bool:
        """Whether the loop takes items once `item` is in: any of a stream's, the last of
        a whole reply's."""
        return self.call.stream or _ended(item)

    # the reader thread
    def put(self, item: Item) -> None:
        self.ended = self.ended or _ended(item)
        self._items.append(item)
        if not self._wanted(item):
            return
        with self._lock:
            if not self._waiting:
                return
            self._waiting = False
        self._loop.call_soon_threadsafe(self._ready.set)

    # the event loop
    async def items(self) -> list[Item]:
        """What has come since the last call (waits for at least one item; a whole
        reply's, until it is over)."""
        while not (self._items and self._wanted(self._items[-1])):
            self._ready.clear()
            with self._lock:
                self._waiting = True
            if self._items and self._wanted(self._items[-1]):  # came before `_waiting`
                with self._lock:
                    self._waiting = False
                break
            await self._ready.wait()
        out = []
        while self._items:
            out.append(self._items.popleft())
        return out

    def cancel(self) -> None:
        """Stop generating (the client left, a stop string came, the server stops)."""
        if not self.cancelled and not self.ended:
            self.cancelled = True
            self.on_cancel()


def _ended(item: Item) -> bool:
    return isinstance(item, (Done, Failed, Rendered))


class Models:
    """The model process and the jobs it holds; the model a job names is loaded on first
    use (one is resident at a time), from the spec `spec_for(model)` gives."""

    def __init__(
        self,
        settings: Settings,
        spec_for: Callable[[str], str],
        *,
        max_queue: int = 16,
        keep_alive: float = -1.0,
        log: Callable[[str], None] = print,
    ) -> None:
        """`keep_alive`: seconds an idle model stays loaded (negative: for good)."""
        self._spec_for, self._log = spec_for, log
        self._n_ctx = settings.n_ctx or DEFAULT_CTX
        self.max_queue = max_queue
        self.keep_alive = keep_alive
        self.expires_at: float | None = None  # when the idle model is unloaded (time.time())
        self._idle = 0  # counts idle spells: a timer from an earlier one does nothing
        self._timer: threading.Timer | None = None
        self.resident: str | None = None
        self.info: EngineInfo | None = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._jobs: dict[int, Job] = {}  # sent and not ended
        self._loads: dict[int, tuple[threading.Event, list[Any]]] = {}
        self._seconds = 1.0  # a running average of how long a job takes
        self._started_at: dict[int, float] = {}
        self._child = ChildProcess(
            "r1chat.serve.child", [], serve_log, self._frame, self._lost, ("settings", settings)
        )

    # -- the event loop's side -----------------------------------------------------------

    def load(self, model: str) -> EngineInfo:
        """Make `model` the resident one and wait until it is (the server's start); raises
        R1ChatError with the reason it cannot load."""
        load_id = next(self._ids)
        done, result = threading.Event(), list[Loaded | LoadFailed]()
        with self._lock:
            self._loads[load_id] = (done, result)
        self._send(("load", load_id, model, self._spec_for(model)))
        done.wait()
        item = result[0]
        if isinstance(item, LoadFailed):
            raise R1ChatError(item.message)
        assert isinstance(item, Loaded)
        return item.info

    def submit(self, job: Job) -> None:
        """Send `job` to the model process; a full queue raises the 429."""
        with self._lock:
            waiting = sum(1 for j in self._jobs.values() if not j.started)
            if waiting >= self.max_queue:  # (`counts`, under the lock already held)
                wait = max(1, round(self._seconds * (waiting + 1)))
                raise BadRequest(
                    f"the server is busy ({waiting} requests waiting); retry later",
                    status=429,
                    code="rate_limit_exceeded",
                    kind="rate_limit_error",
                ).retry_after(wait)
            job.id = next(self._ids)
            self._idle += 1  # a job: no unloading now
            self.expires_at = None
            job.on_cancel = lambda: self._send(("cancel", job.id), start=False)
            self._jobs[job.id] = job
        self._send_job(job)

    def context(self) -> int:
        """The context each reply has (the loaded model's, else the settings')."""
        info = self.info
        return info.n_ctx if info is not None else self._n_ctx

    def idle_for(self, seconds: float) -> None:
        """Unload the model once it has been idle `seconds` (now for 0; never for a
        negative number); a job coming meanwhile keeps it."""
        with self._lock:
            self._idle += 1
            idle = self._idle
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            busy = bool(self._jobs)
            self.expires_at = None if seconds < 0 else time.time() + seconds
        if seconds < 0 or busy:
            return
        if seconds == 0:
            self._unload(idle)
            return
        self._timer = threading.Timer(seconds, self._unload, (idle,))
        self._timer.daemon = True
        self._timer.start()

    def _unload(self, idle: int) -> None:
        """End the model process (its memory goes back to the system); the next job
        starts a new one, which loads the model again."""
        with self._lock:
            if idle != self._idle or self._jobs or self.resident is None:
                return
            model, self.resident, self.info, self.expires_at = self.resident, None, None, None
        self._child.stop(timeout=30.0)
        self._log(f"unloaded {model} (idle); the next request loads it again")

    def counts(self) -> tuple[int, int]:
        """(replies running, requests waiting)."""
        with self._lock:
            running = sum(1 for j in self._jobs.values() if j.started)
            return running, len(self._jobs) - running

    def cancel_all(self) -> None:
        """Cancel every job (the server is stopping)."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel()

    def stop(self) -> None:
        """`cancel_all`, then end the model process (freeing the model)."""
        if self._timer is not None:
            self._timer.cancel()
        self.cancel_all()
        self._child.stop(timeout=30.0)

    # -- sending -------------------------------------------------------------------------

    def _send_job(self, job: Job) -> None:
        self._send(("job", job.id, job.call, job.model, self._spec_for(job.model)))

    def _send(self, command: tuple[Any, ...], *, start: bool = True) -> None:
        try:
            self._child.send(command, start=start)
        except OSError as e:
            self._lost(0, f"could not be started ({e})")

    # -- the reader thread ---------------------------------------------------------------

    def _frame(self, items: list[tuple[int, Any]]) -> None:
        for job_id, item in items:
            if isinstance(item, (Loaded, LoadFailed)):
                if isinstance(item, Loaded):
                    self.resident, self.info = item.info.model, item.info
                    self._n_ctx = item.info.n_ctx
                self._loaded(job_id, item)
                continue
            with self._lock:
                job = self._jobs.get(job_id)
            if job is None:
                continue
            if isinstance(item, Started):
                job.started = True
                self._started_at[job_id] = time.monotonic()
            elif isinstance(item, JobEnded):
                self._job_ended(job)
            else:
                if isinstance(item, Done) and job.client_gone:
                    tokens = item.stats.thinking_tokens + item.stats.answer_tokens
                    self._log(
                        f"{job.what} · the client went away after {tokens:,} tokens; "
                        "generation stopped"
                    )
                job.put(item)

    def _loaded(self, load_id: int, item: Loaded | LoadFailed) -> None:
        with self._lock:
            waiter = self._loads.pop(load_id, None)
        if waiter is not None:
            waiter[1].append(item)
            waiter[0].set()

    def _job_ended(self, job: Job) -> None:
        with self._lock:
            self._jobs.pop(job.id, None)
            start = self._started_at.pop(job.id, None)
        if start is not None:
            self._seconds = 0.8 * self._seconds + 0.2 * (time.monotonic() - start)
        with self._lock:
            idle = not self._jobs
        if idle:
            self.idle_for(self.keep_alive if job.keep_alive is None else job.keep_alive)
        if not job.ended:  # (no reply and no reason: say so rather than hang)
            job.put(
                Failed(
                    BadRequest("the reply ended without an answer", status=500, kind="server_error")
                )
            )

    def _lost(self, pid: int, how: str) -> None:
        """The model process died: the jobs it was running fail, the waiting ones go to a
        new process (started now, when there are some)."""
        self.resident, self.info = None, None
        with self._lock:
            loads, self._loads = list(self._loads.values()), {}
            jobs = list(self._jobs.values())
            running = [j for j in jobs if j.started]
            waiting = [j for j in jobs if not j.started]
            for job in running:
                self._jobs.pop(job.id, None)
                self._started_at.pop(job.id, None)
        where = serve_log()
        for done, result in loads:
            result.append(LoadFailed(f"the model process {how} while loading; see {where}"))
            done.set()
        for job in running:
            message = (
                f"the model process {how} during this reply (a crash inside llama.cpp?); "
                f"the server goes on and loads the model again; see {where}"
            )
            job.put(Failed(BadRequest(message, status=500, kind="server_error")))
            self._log(
                f"{job.what} 500 · {job.model} · the model process {how}; "
                "it is started again for the next request"
            )
        note(
            where,
            f"r1chat serve: the model process (pid {pid}) {how}, with "
            f"{len(running)} reply(s) running and {len(waiting)} waiting",
        )
        for job in waiting:
            if not job.cancelled:
                self._send_job(job)
