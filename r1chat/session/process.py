"""The engine in a child process (what the chat uses), behind `EngineThread`'s interface."""

from __future__ import annotations

import contextlib
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from r1chat.config import paths
from r1chat.config.settings import Settings
from r1chat.core.messages import Message
from r1chat.core.overflow import Overflow
from r1chat.core.request import Control, Request
from r1chat.core.turn import Guards
from r1chat.session.items import EngineLost, Failed, Item, JobEnded, LoadFailed
from r1chat.session.worker import ReplyJob, log

# -- the engine in a child process -----------------------------------------------------------
#
# Python runs one thread at a time (the GIL). The UI thread's work (layout, painting,
# rendering Markdown) and the generation loop's Python work (sampling, splitting,
# guards) would take turns; with a fast model every millisecond the UI spends is a
# millisecond generation waits. So the chat runs the engine in a child process
# (`python -m r1chat.session.child`): an `EngineThread` there, its inbox forwarded
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


def _how_it_ended(code: int) -> str:
    """`was killed by SIGKILL`, `stopped unexpectedly (exit code 3)`."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"stopped unexpectedly (exit code {code})"


def _note(path: Path, line: str) -> None:
    """Add a line to the engine log (the child cannot say why it died: we say that it did)."""
    with contextlib.suppress(OSError), path.open("a", encoding="utf-8") as f:
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")


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
                [sys.executable, "-m", "r1chat.session.child", str(self.history_path)],
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
                    with self._lock:
                        late = job_id not in self._pending  # after its job (a prefill's)
                        if isinstance(item, JobEnded):
                            self._pending.pop(job_id, None)
                    ended = ended or isinstance(item, JobEnded) or late
                    self.inbox.put((job_id, item))
                if ended and self._wake is not None:
                    self._wake()
        except Exception:
            log.error("engine process reader:\n%s", traceback.format_exc())
        code = proc.wait()
        with self._lock:
            if self._proc is not proc or self._stopping:
                return
            how = _how_it_ended(code)
            message = f"the model process {how}; see {self._log_path()}"
            _note(self._log_path(), f"r1chat: the model process (pid {proc.pid}) {how}, "
                  f"with {len(self._pending)} job(s) running")  # fmt: skip
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
