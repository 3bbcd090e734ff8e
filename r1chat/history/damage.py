"""A history file that is not a whole database: how it is recognised, what the user is
told, and how it is moved aside (never deleted) for `history.recover` to read."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from r1chat.core.errors import R1ChatError

_DAMAGE = re.compile(r"not a database|malformed|corrupt|damaged pages", re.IGNORECASE)


def damaged(e: Exception) -> bool:
    """Whether SQLite's error `e` says the file is damaged."""
    return bool(_DAMAGE.search(str(e)))


class DamagedHistory(R1ChatError):
    """The history file is not a whole database. It is never deleted: `history.recover`
    copies its readable rows into a fresh file and `move_aside` keeps it beside that."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"the history file {path} is damaged ({reason}); `r1chat history recover` copies "
            f"what it still holds into a new one (the damaged file is kept as "
            f"{aside_name(path, 'DATE').name})"
        )
        self.path = path


def aside_name(path: Path, stamp: str) -> Path:
    return path.with_name(f"{path.name}.corrupt-{stamp}")


def move_aside(path: Path) -> Path:
    """Rename a damaged history file (and its WAL and shared-memory files) out of the way,
    never over an earlier one; the new name of the database file."""
    stamp = time.strftime("%Y-%m-%d-%H%M%S")
    target, n = aside_name(path, stamp), 1
    while target.exists():
        n += 1
        target = aside_name(path, f"{stamp}-{n}")
    try:
        for suffix in ("", "-wal", "-shm"):
            source = path.with_name(path.name + suffix)
            if source.exists():
                os.replace(source, target.with_name(target.name + suffix))
    except OSError as e:
        raise R1ChatError(f"cannot move {path} aside: {e.strerror or e}") from None
    return target
