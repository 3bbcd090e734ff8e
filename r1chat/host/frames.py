"""A Python child process spoken to in length-prefixed pickle frames: the model process
(`host.child`), where the model runs for the chat and for `r1chat serve`, so that a crash
inside llama.cpp costs a reply, not the program.

The child's stdout carries the frames; its stderr (and anything llama.cpp writes) goes to
a log file. A reader thread hands each frame to `on_frame`; when the child ends without
being asked to, `on_exit` gets its pid and how (`was killed by SIGSEGV`), and the next
`send` starts a new one.
"""

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


# -- in the child -------------------------------------------------------------------------

FRAME_S = 0.01
"""While a reply streams, a child writes at most one frame this often: a frame per token
would cost the model time (pickling, a pipe write, a wake-up in the parent)."""


def child_streams() -> IO[bytes]:
    """In a child: the protocol's output (the real stdout); file descriptors 1 and 2 both
    go to stderr's target (the log), so nothing llama.cpp prints enters the protocol. A
    crash leaves the Python stack there too; Ctrl-C is the parent's to handle."""
    import faulthandler
    import os

    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    faulthandler.enable()
    return out


class Outbox:
    """In a child: what goes to the parent, written as frames (each the `join` of what
    came) by `run` on a thread of its own: at once after a quiet spell or for an `urgent`
    item (a job's end), else at most every `FRAME_S`, so a streaming reply costs one
    frame per `FRAME_S` and no wake-up per token."""

    def __init__(
        self, out: IO[bytes], join: Callable[[list[Any]], list[Any]], urgent: Callable[[Any], bool]
    ) -> None:
        self._out, self._join, self._urgent = out, join, urgent
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._flush = threading.Event()

    def put(self, item: Any) -> None:
        self._queue.put(item)
        if self._urgent(item):
            self._flush.set()

    def close(self) -> None:
        """Write what is left, then end `run`."""
        self._queue.put(None)
        self._flush.set()

    def run(self) -> None:
        """Write frames until `close` (or until the parent is gone)."""
        last = 0.0
        while (item := self._queue.get()) is not None:
            wait = last + FRAME_S - time.monotonic()
            if wait > 0 and not self._urgent(item):
                self._flush.wait(wait)
            self._flush.clear()
            items, more = [item], True
            with contextlib.suppress(queue.Empty):
                while (item := self._queue.get_nowait()) is not None:
                    items.append(item)
                more = False
            try:
                write_frame(self._out, self._join(items))
            except (OSError, ValueError):
                return  # the parent is gone
            if not more:
                return
            last = time.monotonic()


# -- in the parent ------------------------------------------------------------------------


def how_it_ended(code: int) -> str:
    """`was killed by SIGKILL`, `stopped unexpectedly (exit code 3)`."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"stopped unexpectedly (exit code {code})"


def note(path: Path, line: str) -> None:
    """Add a dated line to a log (the child cannot say why it died: the parent says it did)."""
    with contextlib.suppress(OSError), path.open("a", encoding="utf-8") as f:
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")


@contextlib.contextmanager
def _log_file(path: Path) -> Any:
    """The log a child writes to, or nowhere where it cannot be written (a full disk, a
    read-only home): the model still runs; what it would have logged is lost."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        log = open(path, "ab")  # noqa: SIM115
    except OSError:
        yield subprocess.DEVNULL
        return
    with log:
        yield log


class ChildProcess:
    """`python -m MODULE ARGS...`, started on the first `send` and again after it dies."""

    def __init__(
        self,
        module: str,
        args: list[str],
        log_path: Callable[[], Path],
        on_frame: Callable[[Any], None],
        on_exit: Callable[[int, str], None],
        hello: Any = None,
    ) -> None:
        """`hello`: the command every new child gets first (its settings, say)."""
        self.module, self.args, self._hello = module, args, hello
        self._log_path, self._on_frame, self._on_exit = log_path, on_frame, on_exit
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def send(self, command: Any, *, start: bool = True) -> bool:
        """Write `command`, starting the child first if it is not running (unless not
        `start`: then a command for no child is dropped); raises OSError when it cannot."""
        with self._lock:
            commands: list[Any] = [command]
            if not self.running:
                if not start:
                    return False
                self._stopping = False
                self._proc = self._spawn()
                if self._hello is not None:
                    commands.insert(0, self._hello)
            assert self._proc is not None and self._proc.stdin is not None
            try:
                for c in commands:
                    write_frame(self._proc.stdin, c)
            except ValueError as e:  # its pipe was closed under us: it is ending
                raise OSError(str(e)) from None
            return True

    def _spawn(self) -> subprocess.Popen[bytes]:
        with _log_file(self._log_path()) as log_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
            )
        name = f"{self.module.rsplit('.', 1)[-1]}-reader"
        threading.Thread(target=self._read, args=(proc,), name=name, daemon=True).start()
        return proc

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        try:
            while (frame := read_frame(proc.stdout)) is not None:
                self._on_frame(frame)
        except Exception:
            note(self._log_path(), f"r1chat: reading the model process:\n{traceback.format_exc()}")
        code = proc.wait()
        with self._lock:
            if self._proc is not proc or self._stopping:
                return
            self._proc = None
        self._on_exit(proc.pid, how_it_ended(code))

    def stop(self, quit_command: Any, timeout: float = 3.0) -> None:
        """Ask the child to end (then kill it after `timeout`); no `on_exit` follows."""
        with self._lock:
            self._stopping = True
            proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError, ValueError):
            assert proc.stdin is not None
            write_frame(proc.stdin, quit_command)
            proc.stdin.close()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
