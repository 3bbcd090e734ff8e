"""One file's transfer into `<file>.part`: resume, retries, progress, verification."""

from __future__ import annotations

import http.client
import json
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from r1chat.core.errors import R1ChatError
from r1chat.core.units import human
from r1chat.models import store
from r1chat.models.download.bodies import Body, open_body
from r1chat.models.download.hashing import Hasher
from r1chat.models.download.hub import resolve_remote
from r1chat.models.download.types import (
    HashMismatch,
    ProgressFn,
    PullCancelled,
    PullProgress,
    RemoteFile,
)

if TYPE_CHECKING:
    from r1chat.models.catalog import Entry

RETRIES = 5  # reconnects per file without progress before giving up
_WATCH_S = 0.05  # how soon a cancel ends a read that waits on the server
_PROGRESS_EVERY = 0.1  # seconds between progress callbacks


class _Incomplete(Exception):
    """The body ended early, or the server failed transiently: try again from here."""


class _Restart(_Incomplete):
    """The server ignored the Range request: the file starts over from byte 0."""


class _Expired(Exception):
    """The CDN refused a signed URL (expired): resolve it again."""


class Tracker:
    def __init__(
        self,
        entry: Entry,
        count: int,
        total: int,
        done: int,
        progress: ProgressFn | None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.entry, self.count, self.total, self.done = entry, count, total, done
        self.cancel = cancel
        self.resumed = done
        self.progress = progress
        self.file, self.index, self._last = "", 0, 0.0
        self._owed = False  # a report held back by the pace, not sent since
        self._lock = threading.Lock()  # (the fetch's watch sends what is owed)

    def report(self, phase: str = "download", force: bool = False) -> None:
        """Tell `progress`, at most every `_PROGRESS_EVERY` unless `force`d; what the pace
        holds back is sent by `report_owed` once it allows."""
        if self.progress is None:
            return
        with self._lock:
            now = time.monotonic()
            if not force and now - self._last < _PROGRESS_EVERY:
                self._owed = True
                return
            self._last, self._owed = now, False
            self.progress(
                PullProgress(
                    self.entry.name,
                    self.file,
                    self.index,
                    self.count,
                    self.done,
                    self.total,
                    self.resumed,
                    phase,
                )
            )

    def report_owed(self) -> None:
        """Send a report the pace held back (the bytes before a stalled read)."""
        if self._owed:
            self.report()


def valid_part(remote: RemoteFile) -> int:
    """Bytes of a partial download that belong to this remote file (0 if none/stale)."""
    part, meta = store.part_path(remote.local), store.part_meta_path(remote.local)
    if not part.exists():
        return 0
    try:
        saved = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        saved = {}
    have = part.stat().st_size
    if saved.get("etag") != remote.etag or saved.get("size") != remote.size or have > remote.size:
        part.unlink()
        return 0
    return have


def _write_part_meta(remote: RemoteFile, entry: Entry) -> None:
    meta = {
        "etag": remote.etag,
        "size": remote.size,
        "repo": entry.repo,
        "path": remote.repo_path,
        "commit": remote.commit,
    }
    store.part_meta_path(remote.local).write_text(json.dumps(meta), encoding="utf-8")


def download_file(
    entry: Entry, index: int, remote: RemoteFile, tracker: Tracker, retries: int
) -> Path:
    from huggingface_hub import constants

    part = store.part_path(remote.local)
    have = valid_part(remote)
    _write_part_meta(remote, entry)
    timeout = float(constants.HF_HUB_DOWNLOAD_TIMEOUT)
    failures = 0
    with part.open("ab", buffering=0) as out:
        hasher = Hasher(part, have, remote.size, remote.git_sha1 is not None)
        try:
            while (start := out.tell()) < remote.size:
                try:
                    _fetch(remote, out, start, hasher, tracker, timeout)
                    if out.tell() < remote.size:
                        raise _Incomplete(
                            f"connection closed at {out.tell():,} of {remote.size:,} bytes"
                        )
                except transient_errors() as e:
                    if isinstance(e, _Restart):
                        hasher.finish(check=False)
                        hasher = Hasher(part, 0, remote.size, hasher.sha1 is not None)
                        continue
                    failures = 0 if out.tell() > start else failures + 1
                    if failures > retries:
                        raise R1ChatError(
                            f"download of {remote.repo_path} interrupted ({_why(e)}); "
                            f"{human(out.tell())} kept, run `r1chat models pull "
                            f"{entry.name}` again to resume"
                        ) from None
                    time.sleep(min(0.2 * 2**failures, 10) if failures else 0)
                    if isinstance(e, _Expired) or failures > 1:
                        remote.url = _refresh_url(entry, index, remote)
        except BaseException:
            hasher.finish(check=False)  # stop the thread before the file closes
            raise
        tracker.report("verify", force=True)
        digest, sha1 = hasher.finish()
        got_size = out.tell()
    if got_size != remote.size:
        part.unlink(missing_ok=True)
        raise R1ChatError(
            f"{remote.repo_path}: got {got_size:,} bytes, expected {remote.size:,}; "
            "the download was deleted, pull again"
        )
    _verify(remote, digest, sha1)
    os.replace(part, remote.local)
    store.part_meta_path(remote.local).unlink(missing_ok=True)
    _fsync_dir(remote.local.parent)
    return remote.local


def _why(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text if len(text) < 120 else text[:117] + "..."


def _fetch(
    remote: RemoteFile, out: Any, start: int, hasher: Hasher, tracker: Tracker, timeout: float
) -> None:
    headers = dict(remote.headers)
    if start:
        headers["Range"] = f"bytes={start}-"
    body = open_body(remote.url, headers, timeout)
    unwatch = _watch(tracker, body)
    try:
        status = body.status
        if status == 416 and start >= remote.size:
            return
        if status in (401, 403, 410) and start:
            raise _Expired(f"HTTP {status}")
        if status == 429 or status >= 500:
            raise _Incomplete(f"HTTP {status}")
        if status >= 400:
            raise R1ChatError(f"the server answered HTTP {status} for {remote.repo_path}")
        if start and status == 200:  # the server ignored Range: start over
            out.seek(0)
            out.truncate()
            tracker.done -= start
            raise _Restart("server ignored the range request")
        if start and status == 206:
            crange = body.header("Content-Range")
            m = re.match(r"bytes (\d+)-", crange)
            if not m or int(m.group(1)) != start:
                raise R1ChatError(f"bad Content-Range {crange!r} for {remote.repo_path}")
        _copy(body, out, remote, hasher, tracker)
    finally:
        unwatch()
        body.close()


def _watch(tracker: Tracker, body: Body) -> Callable[[], None]:
    """While `body` is read (a read fills a whole buffer, so it may wait seconds on a
    slow or silent server): end its connection as soon as the pull is cancelled, and send
    the progress the pace held back. Returns what ends the watch."""
    cancel = tracker.cancel
    if cancel is None and tracker.progress is None:
        return lambda: None
    done = threading.Event()

    def watch() -> None:
        while not done.wait(_WATCH_S):
            if cancel is not None and cancel.is_set():
                body.abort()
                return
            tracker.report_owed()

    threading.Thread(target=watch, name="r1chat-pull-watch", daemon=True).start()
    return done.set


def _copy(body: Body, out: Any, remote: RemoteFile, hasher: Hasher, tracker: Tracker) -> None:
    """Body -> file, a buffer at a time; each written buffer goes to the hasher. On an
    error (or a cancel) the bytes already read are written first, so a retry starts
    after them."""
    cancel = tracker.cancel
    left = remote.size - out.tell()
    while left > 0:
        i, buf = hasher.buffer()
        n, want = 0, min(len(buf), left)
        error: BaseException | None = None
        try:
            while n < want:
                if cancel is not None and cancel.is_set():
                    break
                k = body.readinto(buf[n:want])
                if not k:
                    break
                n += k
        except BaseException as e:
            error = e
        if cancel is not None and cancel.is_set() and not isinstance(error, KeyboardInterrupt):
            error = PullCancelled(  # (a read the cancel cut short, or that failed for it)
                f"pull of {tracker.entry.name} cancelled; {remote.repo_path} kept "
                "for the next pull to resume"
            )
        if n:
            view = buf[:n]
            try:
                while view:  # a raw write may be partial
                    view = view[out.write(view) :]
            except OSError as e:
                hasher.give_back(i)
                raise R1ChatError(
                    f"cannot write {out.name}: {e.strerror or e}; {human(out.tell())} kept"
                ) from None
            hasher.submit(i, n)
            left -= n
            tracker.done += n
            tracker.report()
        else:
            hasher.give_back(i)
        if error is not None:
            raise error
        if n < want:
            return  # the body ended early; the caller reconnects
    # anything beyond the expected size is ignored: the sha256 check decides


def _refresh_url(entry: Entry, index: int, remote: RemoteFile) -> str:
    try:
        fresh = resolve_remote(entry, index)
    except R1ChatError:
        return remote.url
    if fresh.etag != remote.etag or fresh.size != remote.size:
        raise R1ChatError(f"{remote.repo_path} changed on the Hub during the download; pull again")
    remote.headers = fresh.headers
    return fresh.url


def _verify(remote: RemoteFile, digest: str, sha1: str | None) -> None:
    for kind, expected, got in (
        ("sha256", remote.sha256, digest),
        ("git sha1", remote.git_sha1, sha1),
    ):
        if expected and got != expected:
            store.part_path(remote.local).unlink(missing_ok=True)
            store.part_meta_path(remote.local).unlink(missing_ok=True)
            raise HashMismatch(
                f"{kind} mismatch for {remote.repo_path}: expected {expected}, got "
                f"{got}; the download was deleted, pull again"
            )


def intact(path: Path) -> bool:
    """An installed file still reads as a whole GGUF (its header and tensor extent)."""
    from r1chat.models.gguf import GGUFError, read_gguf

    try:
        read_gguf(path)
    except GGUFError:
        return False
    return True


def _fsync_dir(folder: Path) -> None:
    if os.name == "nt":  # pragma: no cover
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def transient_errors() -> tuple[type[BaseException], ...]:
    """Errors after which the download goes on from the bytes on disk."""
    import httpx2

    return (OSError, http.client.HTTPException, httpx2.TransportError, _Incomplete, _Expired)
