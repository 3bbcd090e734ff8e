"""Where the model runs for the chat, and how its events reach the UI.

`EngineThread` owns the engine: one thread loads the model, then runs replies one at a
time. Each job puts `(job_id, item)` pairs on a thread-safe inbox queue; the app drains
that queue on a short timer and hands each batch to the widgets (see `batch`). Replies
are saved to History from that thread about once a second while they stream, and
completely when they end, so a killed process loses at most the last second of text.

`EngineProcess` (what the chat uses) runs an `EngineThread` in a child process and
forwards its inbox over a pipe (see the note above it). Nothing here touches Textual.
"""

from __future__ import annotations

import logging
import pickle
import queue
import struct
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Union

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
class EngineLost:
    """The model process died (its jobs were failed); the model must be loaded again."""

    message: str


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
    Event,
    Loading,
    Loaded,
    LoadFailed,
    Failed,
    ContextUsed,
    JobEnded,
    EngineLost,
    ThinkingChunk,
    AnswerChunk,
]


def batch(items: Iterable[tuple[int, Item]]) -> list[tuple[int, Item]]:
    """Join runs of thinking and answer text of one job (deltas or chunks already
    joined elsewhere), so the UI appends once per run instead of once per token."""
    out: list[tuple[int, Item]] = []
    texts: list[str] = []
    run_job, run_kind, count = -1, "", 0

    def flush() -> None:
        if run_kind == "thinking":
            out.append((run_job, ThinkingChunk("".join(texts), count)))
        elif run_kind == "answer":
            out.append((run_job, AnswerChunk("".join(texts), count)))
        texts.clear()

    for job, item in items:
        if isinstance(item, (ThinkingDelta, ThinkingChunk)):
            kind = "thinking"
        elif isinstance(item, (AnswerDelta, AnswerChunk)):
            kind = "answer"
        else:
            kind = ""
        if not kind or kind != run_kind or job != run_job:
            flush()
            run_job, run_kind, count = job, kind, 0
            if not kind:
                out.append((job, item))
                continue
        texts.append(item.text)  # type: ignore[union-attr]
        count += item.count if isinstance(item, (ThinkingChunk, AnswerChunk)) else 1
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
        self._jobs_by_id: dict[int, ReplyJob] = {}
        self.engine: Engine | None = None
        self.load_error: str | None = None
        self._thread.start()

    # -- submitting -------------------------------------------------------------------

    def _submit(self, fn: Callable[[], None]) -> None:
        self._jobs.put(fn)

    def load(self, settings: Settings, job_id: int | None = None) -> int:
        job_id = job_id or next(self._ids)
        self._submit(lambda: self._load(job_id, settings))
        return job_id

    def reply(
        self, request: Request, guards: Guards, message_id: int | None, job_id: int | None = None
    ) -> ReplyJob:
        job = ReplyJob(job_id or next(self._ids), request, guards, message_id)
        self._jobs_by_id[job.id] = job
        self._submit(lambda: self._reply(job))
        return job

    def cancel(self, job_id: int) -> None:
        if (job := self._jobs_by_id.get(job_id)) is not None:
            job.control.cancel()

    def measure(
        self, messages: tuple[Message, ...], request: Request, job_id: int | None = None
    ) -> int:
        """Put the context the conversation fills (next prompt's tokens) on the inbox."""
        job_id = job_id or next(self._ids)

        def run() -> None:
            self._measure(job_id, messages, request)
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
            fn = self._jobs.get()
            if fn is None:
                break
            try:
                fn()
            except BaseException:  # pragma: no cover - every job catches its own errors
                log.error("engine job failed:\n%s", traceback.format_exc())
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
        saver = _Saver(self.history, job.message_id, put, job.id)
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
            self._jobs_by_id.pop(job.id, None)
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


# -- the engine in a child process -----------------------------------------------------------
#
# Python runs one thread at a time (the GIL). The UI thread's work (layout, painting,
# rendering Markdown) and the generation loop's Python work (sampling, splitting,
# guards) would take turns; with a fast model every millisecond the UI spends is a
# millisecond generation waits. So the chat runs the engine in a child process
# (`python -m r1chat.tui.engine_process`): an `EngineThread` there, its inbox forwarded
# over a pipe in batched pickle frames, which a reader thread here puts on the app's
# inbox. The app sees the same jobs and items either way.

_FRAME = struct.Struct("<I")


def write_frame(stream: IO[bytes], obj: object) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_FRAME.pack(len(data)) + data)
    stream.flush()


def read_frame(stream: IO[bytes]) -> Any:
    """The next object, or None at end of stream."""
    head = _read_exactly(stream, _FRAME.size)
    if head is None:
        return None
    data = _read_exactly(stream, _FRAME.unpack(head)[0])
    return None if data is None else pickle.loads(data)


def _read_exactly(stream: IO[bytes], n: int) -> bytes | None:
    chunks, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


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
        inbox: queue.SimpleQueue[tuple[int, Item]],
        history_path: Path,
        wake: Callable[[], None] | None = None,
    ) -> None:
        """`wake` is called (on the reader thread) when a job's result arrives, so the
        app need not wait for its next drain to show it."""
        self.inbox = inbox
        self.history_path = history_path
        self._wake = wake
        self._ids = iter(range(1, 1 << 62))
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._pending: dict[int, str] = {}  # job id -> "load" | "reply" | "measure"
        self._stopping = False

    def _log_path(self) -> Path:
        directory = paths.log_dir()
        directory.mkdir(parents=True, exist_ok=True)
        return directory / "engine.log"

    def _spawn(self) -> subprocess.Popen[bytes]:
        log_path = self._log_path()
        with open(log_path, "ab") as log_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", "r1chat.tui.engine_process", str(self.history_path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
            )
        threading.Thread(
            target=self._read, args=(proc,), name="r1chat-engine-reader", daemon=True
        ).start()
        return proc

    def _send(self, command: tuple[Any, ...], job_id: int | None = None, kind: str = "") -> None:
        with self._lock:
            if job_id is not None:
                self._pending[job_id] = kind
            try:
                if self._proc is None or self._proc.poll() is not None:
                    if command[0] in ("cancel", "quit"):
                        return
                    self._proc = self._spawn()
                assert self._proc.stdin is not None
                write_frame(self._proc.stdin, command)
            except (OSError, ValueError) as e:
                log.error("engine process: %s", e)
                if job_id is not None:
                    self._fail(job_id, kind, f"cannot start the model process: {e}")

    def _fail(self, job_id: int, kind: str, message: str) -> None:
        self._pending.pop(job_id, None)
        self.inbox.put((job_id, LoadFailed(message) if kind == "load" else Failed(message)))
        self.inbox.put((job_id, JobEnded()))
        if self._wake is not None:
            self._wake()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        try:
            while (items := read_frame(proc.stdout)) is not None:
                ended = False
                for job_id, item in items:
                    if isinstance(item, JobEnded):
                        ended = True
                        with self._lock:
                            self._pending.pop(job_id, None)
                    self.inbox.put((job_id, item))
                if ended and self._wake is not None:
                    self._wake()
        except Exception:
            log.error("engine process reader:\n%s", traceback.format_exc())
        code = proc.wait()
        with self._lock:
            if self._proc is not proc or self._stopping:
                return
            message = (
                f"the model process stopped unexpectedly (exit code {code}); see {self._log_path()}"
            )
            for job_id, kind in list(self._pending.items()):
                self._fail(job_id, kind, message)
            self.inbox.put((0, EngineLost(message)))
        if self._wake is not None:
            self._wake()

    # -- the EngineThread interface ---------------------------------------------------

    def load(self, settings: Settings) -> int:
        job_id = next(self._ids)
        self._send(("load", job_id, settings), job_id, "load")
        return job_id

    def reply(self, request: Request, guards: Guards, message_id: int | None) -> ReplyJob:
        job_id = next(self._ids)
        control = _RemoteControl(lambda: self._send(("cancel", job_id)))
        job = ReplyJob(job_id, request, guards, message_id, control=control)
        self._send(("reply", job_id, request, guards, message_id), job_id, "reply")
        return job

    def measure(self, messages: tuple[Message, ...], request: Request) -> int:
        job_id = next(self._ids)
        self._send(("measure", job_id, messages, request), job_id, "measure")
        return job_id

    def stop(self, timeout: float = 3.0) -> None:
        """Stop the running reply (it is saved as stopped), then the child."""
        with self._lock:
            self._stopping = True
            proc = self._proc
        if proc is None:
            return
        try:
            assert proc.stdin is not None
            write_frame(proc.stdin, ("quit",))
            proc.stdin.close()
        except (OSError, ValueError):
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
