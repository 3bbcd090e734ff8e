"""sha256 (or a git blob's sha1) of a download, computed in a second thread."""

from __future__ import annotations

import hashlib
import queue
import threading
from pathlib import Path

from r1chat.core.errors import R1ChatError

CHUNK = 1 << 20  # bytes per buffer: written, then hashed; at most this is fetched twice
_BUFFERS = 8  # buffers in flight between the download and the hashing thread


class Hasher:
    """sha256 (and a git blob sha1 if wanted) of a file being written, off the main thread.

    The downloader takes a buffer with `buffer()`, fills and writes it, and hands it over
    with `submit()`; the thread hashes it and returns it to the pool. Before that, the
    thread hashes the `start` bytes already in the file (a resumed download).
    """

    def __init__(self, path: Path, start: int, size: int, git_sha1: bool) -> None:
        self.sha256 = hashlib.sha256()
        self.sha1 = hashlib.sha1(f"blob {size}\0".encode()) if git_sha1 else None
        self._bufs = [bytearray(CHUNK) for _ in range(_BUFFERS)]
        self._free: queue.Queue[int] = queue.Queue()
        for i in range(_BUFFERS):
            self._free.put(i)
        self._work: queue.Queue[tuple[int, int] | None] = queue.Queue()
        self._error: BaseException | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, args=(path, start), daemon=True)
        self._thread.start()

    def _update(self, data: bytes | memoryview) -> None:
        self.sha256.update(data)
        if self.sha1 is not None:
            self.sha1.update(data)

    def _run(self, path: Path, start: int) -> None:
        try:
            if start:
                with path.open("rb") as f:
                    left = start
                    while left and not self._stop and (block := f.read(min(left, CHUNK))):
                        self._update(block)
                        left -= len(block)
        except BaseException as e:  # reported by finish()
            self._error = e
        while (item := self._work.get()) is not None:
            i, n = item
            if self._error is None and not self._stop:
                self._update(memoryview(self._bufs[i])[:n])
            self._free.put(i)

    def buffer(self) -> tuple[int, memoryview]:
        i = self._free.get()
        return i, memoryview(self._bufs[i])

    def submit(self, i: int, n: int) -> None:
        self._work.put((i, n))

    def give_back(self, i: int) -> None:
        self._free.put(i)

    def finish(self, check: bool = True) -> tuple[str, str | None]:
        """Wait for the thread to hash everything submitted; the digests.
        `check=False`: the download is abandoned; stop hashing, just end the thread."""
        self._stop = self._stop or not check
        self._work.put(None)
        self._thread.join()
        if check and self._error is not None:
            raise R1ChatError(f"cannot re-read the partial download: {self._error}")
        return self.sha256.hexdigest(), self.sha1.hexdigest() if self.sha1 else None
