"""The engine's own thread: it loads the model, then runs replies one at a time.

Nothing here touches Textual. Each job puts `(job_id, item)` pairs on a thread-safe
inbox queue; the app drains that queue on a short timer and hands each batch to the
widgets (see `batch`). Replies are saved to History from this thread about once a
second while they stream, and completely when they end, so a killed process loses at
most the last second of text.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Union

from r1chat import paths
from r1chat.engine.base import Control, Engine, EngineInfo, Request
from r1chat.errors import R1ChatError
from r1chat.events import AnswerDelta, Done, Event, Notice, ThinkingDelta
from r1chat.history import History
from r1chat.messages import Message
from r1chat.settings import Settings
from r1chat.turn import Guards, run_turn

SAVE_INTERVAL_S = 1.0

log = logging.getLogger("r1chat.tui")


@dataclass(frozen=True, slots=True)
class Loading:
    model: str


@dataclass(frozen=True, slots=True)
class Loaded:
    info: EngineInfo
    seconds: float


@dataclass(frozen=True, slots=True)
class LoadFailed:
    message: str


@dataclass(frozen=True, slots=True)
class Failed:
    """A reply that could not start (no model, prompt too long, ...)."""

    message: str


@dataclass(frozen=True, slots=True)
class ContextUsed:
    """Tokens the conversation will re-send with the next prompt."""

    tokens: int
    n_ctx: int


@dataclass(frozen=True, slots=True)
class JobEnded:
    pass


@dataclass(frozen=True, slots=True)
class ThinkingChunk:
    """Several `ThinkingDelta`s joined; `count` of them (about one per token)."""

    text: str
    count: int


@dataclass(frozen=True, slots=True)
class AnswerChunk:
    """Several `AnswerDelta`s joined; `count` of them."""

    text: str
    count: int


Item = Union[  # noqa: UP007 - a runtime alias
    Event, Loading, Loaded, LoadFailed, Failed, ContextUsed, JobEnded, ThinkingChunk, AnswerChunk
]


def batch(items: Iterable[tuple[int, Item]]) -> list[tuple[int, Item]]:
    """Join runs of thinking and answer deltas of one job, so the UI appends once per
    run instead of once per token."""
    out: list[tuple[int, Item]] = []
    texts: list[str] = []
    run_job, run_kind = -1, ""

    def flush() -> None:
        nonlocal run_kind
        if run_kind == "thinking":
            out.append((run_job, ThinkingChunk("".join(texts), len(texts))))
        elif run_kind == "answer":
            out.append((run_job, AnswerChunk("".join(texts), len(texts))))
        texts.clear()
        run_kind = ""

    for job, item in items:
        kind = (
            "thinking"
            if isinstance(item, ThinkingDelta)
            else "answer" if isinstance(item, AnswerDelta) else ""
        )
        if kind and kind == run_kind and job == run_job:
            texts.append(item.text)  # type: ignore[union-attr]
            continue
        flush()
        if kind:
            run_job, run_kind = job, kind
            texts.append(item.text)  # type: ignore[union-attr]
        else:
            out.append((job, item))
    flush()
    return out


@dataclass
class ReplyJob:
    id: int
    request: Request
    guards: Guards
    message_id: int | None
    control: Control = field(default_factory=Control)
    ended: threading.Event = field(default_factory=threading.Event)


class EngineThread:
    """Owns the engine; every use of it happens on this one daemon thread, in order."""

    def __init__(
        self,
        inbox: queue.SimpleQueue[tuple[int, Item]],
        history: History,
        open_engine: Callable[[Settings], Engine],
    ) -> None:
        self.inbox = inbox
        self.history = history
        self._open_engine = open_engine
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="r1chat-engine", daemon=True)
        self._ids = iter(range(1, 1 << 62))
        self._current: ReplyJob | None = None
        self._idle = threading.Event()
        self._idle.set()
        self.engine: Engine | None = None
        self.load_error: str | None = None
        self._thread.start()

    # -- submitting -------------------------------------------------------------------

    def _submit(self, fn: Callable[[], None]) -> None:
        self._idle.clear()
        self._jobs.put(fn)

    def load(self, settings: Settings) -> int:
        job_id = next(self._ids)
        self._submit(lambda: self._load(job_id, settings))
        return job_id

    def reply(self, request: Request, guards: Guards, message_id: int | None) -> ReplyJob:
        job = ReplyJob(next(self._ids), request, guards, message_id)
        self._submit(lambda: self._reply(job))
        return job

    def measure(self, messages: tuple[Message, ...], request: Request) -> None:
        """Put the context the conversation fills (next prompt's tokens) on the inbox."""
        job_id = next(self._ids)
        self._submit(lambda: self._measure(job_id, messages, request))

    def stop(self, timeout: float = 3.0) -> None:
        """Stop the running reply, close the engine, end the thread (waits `timeout`)."""
        if self._current is not None:
            self._current.control.cancel()
        self._jobs.put(None)
        self._thread.join(timeout)

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self._idle.wait(timeout)

    # -- the thread -------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            fn = self._jobs.get()
            if fn is None:
                break
            try:
                fn()
            except BaseException:  # pragma: no cover - every job catches its own errors
                log.error("engine job failed:\n%s", traceback.format_exc())
            if self._jobs.empty():
                self._idle.set()
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        self._idle.set()

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
        saver = _Saver(self.history, job.message_id, put, job.id)
        try:
            if job.control.cancelled:
                done = Done("", "", "cancelled")
                put((job.id, done))
                saver.finish(done)
                return
            engine = self.engine
            if engine is None:
                put((job.id, Failed(f"no model loaded: {self.load_error or 'still loading'}")))
                return
            done = None
            try:
                for event in run_turn(engine, job.request, job.control, job.guards):
                    put((job.id, event))
                    saver.feed(event)
                    if isinstance(event, Done):
                        done = event
            except R1ChatError as e:
                put((job.id, Failed(str(e))))
            except Exception as e:
                log.error("reply failed:\n%s", traceback.format_exc())
                put((job.id, Failed(f"the reply failed: {e}")))
            if done is not None:
                saver.finish(done)
                self._measure(job.id, (*job.request.messages, Message("assistant", done.content)),
                              job.request)  # fmt: skip
        finally:
            self._current = None
            put((job.id, JobEnded()))
            job.ended.set()

    def _measure(self, job_id: int, messages: tuple[Message, ...], request: Request) -> None:
        engine = self.engine
        if engine is None:
            return
        probe = Request(messages, request.sampling, request.system, request.think, request.math)
        try:
            counter: Any = getattr(engine, "prompt_tokens", None)
            tokens = len(counter(probe)) if counter else len(engine.render(probe).tokens)
        except Exception:
            return
        self.inbox.put((job_id, ContextUsed(tokens, engine.info.n_ctx)))


class _Saver:
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


def log_to_file() -> None:
    """Send this module's log (tracebacks of bugs) to the log folder, never the screen."""
    if log.handlers:
        return
    try:
        directory = paths.log_dir()
        directory.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(directory / "tui.log", encoding="utf-8")
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.propagate = False
