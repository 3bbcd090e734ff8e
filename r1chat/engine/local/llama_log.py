"""Send llama.cpp's own log to a file, never onto the user's terminal.

A log that cannot be written (a full disk, a read-only folder) never stops a reply: its
lines are dropped and `problem()` says why, once, for the front end to tell the user.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
from pathlib import Path
from typing import Any, TextIO

from r1chat.core import storage

_MAX_BYTES = 4 << 20
_state: dict[str, Any] = {}  # keeps the ctypes callback and the log alive


class LlamaLog(io.TextIOBase):
    """llama.cpp's log file, which never raises: a write that fails (a full disk) stops
    the logging and is remembered in `problem`; the reply goes on."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problem: str | None = None
        self._file: TextIO | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists() and path.stat().st_size > _MAX_BYTES:
                path.replace(path.with_suffix(path.suffix + ".1"))
            self._file = path.open("a", encoding="utf-8", errors="replace", buffering=1)
        except OSError as e:
            self._failed(e)

    def _failed(self, e: OSError) -> None:
        why = storage.problem(self.path, e)
        self.problem = self.problem or f"cannot write llama.cpp's log {self.path}: {why}"
        if self._file is not None:
            with contextlib.suppress(OSError, ValueError):
                self._file.close()
            self._file = None

    def write(self, text: str) -> int:
        if self._file is not None:
            try:
                self._file.write(text)
            except OSError as e:
                self._failed(e)
            except ValueError:  # closed while Python shuts down
                self._file = None
        return len(text)

    def flush(self) -> None:
        if self._file is not None:
            try:
                self._file.flush()
            except OSError as e:
                self._failed(e)
            except ValueError:
                self._file = None

    def writable(self) -> bool:
        return True


def route_llama_log(path: Path) -> LlamaLog:
    """Install a llama.cpp log callback writing to `path` (rotated at 4 MiB); return the
    log, which Python's own prints can be redirected to as well."""
    if (current := _state.get("log")) is not None and current.path == path:
        return current
    from r1chat.engine.local.native import lib

    c = lib()
    log = LlamaLog(path)

    @c.llama_log_callback
    def _write(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        log.write(text.decode("utf-8", errors="replace"))

    c.llama_log_set(_write, ctypes.c_void_p(0))
    _state.update(log=log, callback=_write)
    return log


def problem() -> str | None:
    """Why llama.cpp's log is not being written, if it is not."""
    log = _state.get("log")
    return log.problem if log is not None else None


def tail(path: Path, lines: int = 40) -> list[str]:
    """The last lines of the log (to explain a failed load)."""
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 16384))
            return f.read().decode("utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return []
