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

_MAX_BYTES = 4 << 20
_state: dict[str, Any] = {}  # keeps the ctypes callback and file alive


class _Dropped(io.StringIO):
    """Where the log goes when its file cannot be written."""

    def write(self, text: str) -> int:
        return len(text)


def route_llama_log(path: Path) -> TextIO:
    """Install a llama.cpp log callback writing to `path` (rotated at 4 MiB); return the
    file (or a sink that drops lines, when `path` cannot be opened: see `problem`)."""
    if (current := _state.get("file")) is not None and _state.get("path") == path:
        return current
    import llama_cpp

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size > _MAX_BYTES:
            path.replace(path.with_suffix(path.suffix + ".1"))
        log: TextIO = path.open("a", encoding="utf-8", errors="replace", buffering=1)
        _state.pop("problem", None)
    except OSError as e:
        log = _Dropped()
        _state["problem"] = f"cannot write llama.cpp's log {path}: {e.strerror}"

    @llama_cpp.llama_log_callback
    def _write(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        if not log.closed:  # llama.cpp still logs while Python shuts down
            try:
                log.write(text.decode("utf-8", errors="replace"))
            except OSError as e:  # the disk filled up: stop logging, keep answering
                _state.setdefault("problem", f"cannot write llama.cpp's log {path}: {e.strerror}")
                with contextlib.suppress(OSError):
                    log.close()

    llama_cpp.llama_log_set(_write, ctypes.c_void_p(0))
    _state.update(file=log, path=path, callback=_write)
    return log


def problem() -> str | None:
    """Why llama.cpp's log is not being written, if it is not."""
    return _state.get("problem")


def tail(path: Path, lines: int = 40) -> list[str]:
    """The last lines of the log (to explain a failed load)."""
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 16384))
            return f.read().decode("utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return []
