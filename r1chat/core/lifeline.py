"""A child process that ends with its parent, however the parent dies (`kill -9` too), on
Linux and macOS alike: the parent keeps the write end of a pipe open for its whole life
and never writes; the child watches the read end, and end of file means the parent is
gone. (A forked child closes its copy of the write end first: `child_side`.)"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable


def lifeline() -> tuple[int, int]:
    """A new pipe: (the end the child watches, the end the parent keeps)."""
    return os.pipe()


def watch(fd: int, gone: Callable[[], None]) -> None:
    """In the child: call `gone` (on a thread of its own) once the parent's end closes."""

    def run() -> None:
        while True:
            try:
                if not os.read(fd, 1):
                    break
            except InterruptedError:
                continue
            except OSError:
                break
        gone()

    threading.Thread(target=run, name="r1chat-lifeline", daemon=True).start()
