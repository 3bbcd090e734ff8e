"""Where the model runs for a front end: `EngineThread` owns the engine on one thread.

It loads the model, then runs jobs (replies, context measures) one at a time. Each job
puts `(job_id, item)` pairs (`r1chat.session.items`) on a thread-safe inbox the front
end drains; replies are saved to History as they stream (`Saver`), so a killed process
loses at most the last second of text. `r1chat.session.process.EngineProcess` runs one
in a child process. Nothing here touches Textual.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import traceback
from collections.abc import Callable

from r1chat.config import paths
from r1chat.config.settings import Settings
from r1chat.core.errors import PromptTooLong, R1ChatError
from r1chat.core.events import Done
from r1chat.core.messages import Message
from r1chat.core.overflow import Overflow, fit
from r1chat.core.request import Control, Request
from r1chat.core.turn import Guards, run_turn
from r1chat.engine.base import Engine
from r1chat.history.store import History
from r1chat.session.fitting import fit_request, token_counter
from r1chat.session.items import (
    ContextUsed,
    Failed,
    Inbox,
    JobEnded,
    LeftOut,
    Loaded,
    LoadFailed,
    Loading,
    Prefilled,
)
from r1chat.session.runner import ReplyJob, RunnerFactory
from r1chat.session.saver import SAVE_INTERVAL_S, Backlog, Saver

log = logging.getLogger("r1chat.session")


class EngineThread:
    """Owns the engine; every use of it happens on this one daemon thread, in order."""

    def __init__(
        self,
        inbox: Inbox,
        history: History,
        open_engine: Callable[[Settings], Engine],
        wake: Callable[[], None] | None = None,
    ) -> None:
        """`wake` tells the front end an item came when no job of its is running."""
        self.inbox = inbox
        self._wake = wake
        self.history = history
        self._open_engine = open_engine
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="r1chat-engine", daemon=True)
        self._ids = iter(range(1, 1 << 62))
        self._current: ReplyJob | None = None
        self._jobs_by_id: dict[int, ReplyJob] = {}
        self.engine: Engine | None = None
        self.load_error: str | None = None
        self.backlog = Backlog(history, inbox.put)
        self._prefill = Control()  # the idle-time prefill running or queued, if any
        self._thread.start()

    # -- submitting -------------------------------------------------------------------

    def _submit(self, fn: Callable[[], None]) -> None:
        self._jobs.put(fn)

    def load(self, settings: Settings, job_id: int | None = None) -> int:
        job_id = job_id or next(self._ids)
        self._submit(lambda: self._load(job_id, settings))
        return job_id

    def reply(
        self,
        request: Request,
        guards: Guards,
        message_id: int | None,
        overflow: Overflow | None = None,
        job_id: int | None = None,
    ) -> ReplyJob:
        job = ReplyJob(
            job_id or next(self._ids), request, guards, message_id, overflow or Overflow()
        )
        self._prefill.cancel()  # a prefill gives way at once; what it read stays cached
        self._jobs_by_id[job.id] = job
        self._submit(lambda: self._reply(job))
        return job

    def cancel(self, job_id: int) -> None:
        if (job := self._jobs_by_id.get(job_id)) is not None:
            job.control.cancel()

    def measure(
        self,
        messages: tuple[Message, ...],
        request: Request,
        overflow: Overflow | None = None,
        job_id: int | None = None,
    ) -> int:
        """Put the context the conversation fills (next prompt's tokens, after the
        overflow policy) on the inbox."""
        job_id = job_id or next(self._ids)

        def run() -> None:
            self._measure(job_id, messages, request, overflow or Overflow())
            self.inbox.put((job_id, JobEnded()))

        self._submit(run)
        return job_id

    def stop(self, timeout: float = 3.0) -> None:
        """Stop the running and queued replies, close the engine, end the thread (waits
        up to `timeout`); stopped replies are saved as stopped."""
        for job in list(self._jobs_by_id.values()):
            job.control.cancel()
        self._jobs.put(None)
        self._thread.join(timeout)

    # -- the thread -------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            try:  # while a save is owed, wake each second to retry it
                fn = self._jobs.get(timeout=SAVE_INTERVAL_S if self.backlog.pending else None)
            except queue.Empty:
                self.backlog.retry()
                continue
            if fn is None:
                break
            try:
                fn()
            except BaseException:  # pragma: no cover - every job catches its own errors
                log.error("engine job failed:\n%s", traceback.format_exc())
        for line in self.backlog.give_up():
            log.error("%s", line)
        if self.engine is not None:
            self.engine.close()
            self.engine = None

    def _load(self, job_id: int, settings: Settings) -> None:
        put = self.inbox.put
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        self.load_error = None
        put((job_id, Loading(settings.model or "")))
        start = time.perf_counter()
        try:
            self.engine = self._open_engine(settings)
        except R1ChatError as e:
            self.load_error = str(e)
        except Exception as e:  # a bug or an unexpected file: still one readable line
            log.error("model load failed:\n%s", traceback.format_exc())
            self.load_error = f"cannot load {settings.model}: {e}"
        if self.engine is not None:
            put((job_id, Loaded(self.engine.info, time.perf_counter() - start)))
        else:
            put((job_id, LoadFailed(self.load_error or "cannot load the model")))
        put((job_id, JobEnded()))

    def _reply(self, job: ReplyJob) -> None:
        put = self.inbox.put
        self._current = job
        saver = Saver(self.backlog, job.message_id)
        try:
            if job.control.cancelled:  # stopped while it waited for the model
                stopped = Done("", "", "cancelled")
                put((job.id, stopped))
                saver.finish(stopped)
                return
            engine = self.engine
            if engine is None:
                put((job.id, Failed(f"no model loaded: {self.load_error or 'still loading'}")))
                return
            done: Done | None = None
            try:
                request, left_out = fit_request(engine, job.request, job.guards, job.overflow)
                if left_out:
                    put((job.id, LeftOut(left_out, job.overflow.keep_first)))
                for event in run_turn(engine, request, job.control, job.guards):
                    if isinstance(event, Done):
                        event.stats.turns_left_out = left_out
                        done = event
                    put((job.id, event))
                    saver.feed(event)
            except R1ChatError as e:
                put((job.id, Failed(str(e))))
            except Exception as e:
                log.error("reply failed:\n%s", traceback.format_exc())
                put((job.id, Failed(f"the reply failed: {e}")))
            if done is not None:
                saver.finish(done)
                whole = job.request.answered(done.content)
                self._measure(job.id, whole.messages, job.request, job.overflow)
                if done.goes_on:
                    self._queue_prefill(job.id, request.answered(done.content))
        finally:
            self._current = None
            self._jobs_by_id.pop(job.id, None)
            put((job.id, JobEnded()))
            job.ended.set()

    def _queue_prefill(self, job_id: int, request: Request) -> None:
        """While the user reads and types: evaluate the conversation as the next prompt
        will start with it (the reply's reasoning left out), so that prompt only reads
        the new message. A reply submitted meanwhile cancels it (`reply`)."""
        engine = self.engine
        if engine is None:
            return
        control = self._prefill = Control()

        def run() -> None:
            if control.cancelled:
                return
            try:
                self.inbox.put((job_id, Prefilled(engine.prefill(request, control))))
                if self._wake is not None:
                    self._wake()
            except Exception:  # an optimisation: the next prompt reads it all instead
                log.error("prefill failed:\n%s", traceback.format_exc())

        self._submit(run)

    def _measure(
        self, job_id: int, messages: tuple[Message, ...], request: Request, overflow: Overflow
    ) -> None:
        engine = self.engine
        if engine is None:
            return
        count = token_counter(engine, request)
        try:
            if count is None:  # a server: its prompt has no token count here
                tokens = 0
            else:  # what the next prompt will send (all of it when no policy can shorten it)
                try:
                    tokens = fit(messages, count, engine.info.n_ctx, overflow).tokens
                except PromptTooLong:
                    tokens = count(messages)
        except Exception:
            return
        self.inbox.put((job_id, ContextUsed(tokens, engine.info.n_ctx)))


def in_thread(open_engine: Callable[[Settings], Engine]) -> RunnerFactory:
    """A runner (`RunnerFactory`) with the model on a thread of this process, opened by
    `open_engine` (tests, benchmarks: an engine of their own)."""
    return lambda inbox, history, wake: EngineThread(inbox, history, open_engine, wake)


def log_to_file() -> None:
    """Send this module's log (tracebacks of bugs) to the log folder, never the screen."""
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
