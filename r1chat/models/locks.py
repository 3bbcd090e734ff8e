"""An exclusive, non-blocking lock on a file, released by the OS if the holder dies and
leaving no file behind when released."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from types import TracebackType

from r1chat.core.errors import R1ChatError


class FileLock:
    """An exclusive, non-blocking lock on a file (released by the OS if we die)."""

    def __init__(self, path: Path, busy: str) -> None:
        self.path, self.busy = path, busy
        self.fd: int | None = None

    def acquire(self) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                _lock_fd(fd)
            except OSError:
                try:
                    holder = os.read(fd, 32).decode(errors="replace").strip()
                except OSError:
                    holder = ""
                os.close(fd)
                raise R1ChatError(self.busy + (f" (pid {holder})" if holder else "")) from None
            if _same_file(fd, self.path):
                break
            os.close(fd)  # the holder removed the file as we opened it: lock the new one
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return self

    def release(self) -> None:
        """Unlock, leaving no file behind (removed while still locked, so a process that
        opened it meanwhile sees it is gone and takes a fresh one)."""
        if self.fd is not None:
            try:
                with contextlib.suppress(OSError):  # Windows cannot remove an open file
                    self.path.unlink(missing_ok=True)
                _unlock_fd(self.fd)
            finally:
                os.close(self.fd)
                self.fd = None

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


if sys.platform == "win32":  # pragma: no cover
    import msvcrt

    def _lock_fd(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock_fd(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _lock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), path.stat())
    except FileNotFoundError:
        return False
