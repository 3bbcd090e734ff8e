"""Which model files are in use: a process that runs a model, or serves it, holds a shared
lock on its file (`hold`); `models rm` asks `in_use` before it deletes. A lock goes with
its process however that ends (`kill -9` too). fcntl's `flock`: Linux and macOS; where
there is none, nothing is held and nothing is found in use."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def hold(path: Path) -> IO[bytes] | None:
    """A shared lock on `path` for as long as the returned file stays open (None: the file
    cannot be opened, or this system has no locks; the model runs all the same)."""
    if fcntl is None:
        return None
    try:
        f = path.open("rb")
    except OSError:
        return None
    try:
        fcntl.flock(f, fcntl.LOCK_SH)
    except OSError:
        f.close()
        return None
    return f


def in_use(path: Path) -> bool:
    """Whether a process holds `path` (`hold`)."""
    if fcntl is None:
        return False
    try:
        f = path.open("rb")
    except OSError:
        return False
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return False
        with contextlib.suppress(OSError):
            fcntl.flock(f, fcntl.LOCK_UN)
    return False
