"""`models pull`: download a catalog model's files from the Hugging Face Hub, resumably.

How it combines huggingface_hub with its own transfer:

- huggingface_hub does everything that is about the Hub: the file URL (`hf_hub_url`,
  which honours HF_ENDPOINT), the HEAD request that yields size, LFS sha256 (the
  `X-Linked-Etag`), commit and CDN location (`get_hf_file_metadata`), authentication
  (`build_hf_headers`: HF_TOKEN or the stored login), offline mode (HF_HUB_OFFLINE),
  and its error types (gated, not found, ...), which become one-line messages here.
- The bytes come through our own loop, because `hf_hub_download` keeps its partial file
  in its cache and only resumes within one process: we keep `<file>.part` next to the
  destination and ask for `Range: bytes=N-`, so a pull resumes after Ctrl-C, a dropped
  connection or `kill -9`, re-fetching at most the one buffer that was not yet written.
  The GET goes through the standard library's http.client (with httpx2's SSL context,
  the one huggingface_hub's client uses) reading straight into reused 1 MiB buffers:
  on a loopback link that keeps up with curl, where huggingface_hub's httpx client
  (several copies of every byte in Python) reaches about 60% of it. When a proxy is
  configured (HTTPS_PROXY and friends) the GET goes through huggingface_hub's client
  (`get_session()`), which knows proxies.
- `<file>.part.json` records which remote object (etag, size) the partial bytes belong
  to: if the file changed upstream, the stale partial is discarded, not spliced.
- sha256 is computed while downloading, in a second thread that is handed each buffer
  after it is written (on resume it first re-reads the bytes already on disk). The
  digest is checked against the catalog's sha256, else the Hub's LFS sha256; only a
  verified file is renamed to its final name (atomically). A mismatch deletes that
  `.part` and says which file and both hashes; files already verified are kept.
- Free disk space is checked before the first byte; a lock file (flock) keeps a second
  pull of the same file out; a dropped connection is retried from where it stopped.
- The data is not fsynced before the rename (nor by hf_hub_download or curl): on a fast
  link that costs a quarter of the throughput. A process crash loses nothing (the bytes
  are in the page cache); after a power cut a file may come back short, which the GGUF
  header check catches: `pull` fetches such a file again and loading it says so.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urljoin, urlsplit

from r1chat.core.errors import R1ChatError
from r1chat.core.units import human
from r1chat.models import store

if TYPE_CHECKING:
    from r1chat.models.catalog import Entry

CHUNK = 1 << 20  # bytes per buffer: written, then hashed; at most this is fetched twice
_BUFFERS = 8  # buffers in flight between the download and the hashing thread
SPACE_MARGIN = 64 << 20  # keep this much free beyond the download
RETRIES = 5  # reconnects per file without progress before giving up
_PROGRESS_EVERY = 0.1  # seconds between progress callbacks
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True, slots=True)
class PullProgress:
    """What a progress callback gets (at most every 0.1 s, and once at each file's end)."""

    name: str  # the model
    file: str  # the file being fetched
    index: int  # 1-based, of `count`
    count: int
    done: int  # bytes on disk for all files
    total: int  # bytes of all files
    resumed: int  # bytes that were already on disk when this pull started
    phase: str  # "download", "verify" or "done"


ProgressFn = Callable[[PullProgress], None]


@dataclass(slots=True)
class Remote:
    """One file as the Hub describes it."""

    repo_path: str
    local: Path
    size: int
    url: str
    etag: str
    commit: str
    sha256: str | None  # what the bytes must hash to
    git_sha1: str | None  # for a non-LFS file: its git blob id
    headers: dict[str, str]

    @property
    def check(self) -> str:
        """How the bytes are verified: "sha256", "git sha1", or only "size"."""
        return "sha256" if self.sha256 else "git sha1" if self.git_sha1 else "size"


class HashMismatch(R1ChatError):
    pass


class PullCancelled(R1ChatError):
    """`cancel` was set: the partial file is kept for the next pull to resume."""

    exit_code = 130


# -- Hub access --------------------------------------------------------------------------


def _hub_error(e: BaseException, entry: Entry, repo_path: str) -> R1ChatError:
    """One line for whatever the Hub or the network said."""
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub import errors as hfe

    repo, rev = entry.repo, entry.revision
    endpoint = constants.ENDPOINT
    if isinstance(e, hfe.GatedRepoError):
        return R1ChatError(
            f"{repo} is gated: accept its terms at {endpoint}/{repo} and set "
            "HF_TOKEN to a token of that account (or run: hf auth login)"
        )
    if isinstance(e, hfe.RepositoryNotFoundError):
        return R1ChatError(
            f"repository {repo} not found on {endpoint} (if it is private or gated, set HF_TOKEN)"
        )
    if isinstance(e, hfe.RevisionNotFoundError):
        return R1ChatError(f"revision {rev!r} not found in {repo}")
    if isinstance(e, hfe.RemoteEntryNotFoundError):
        return R1ChatError(f"{repo_path} not found in {repo} (revision {rev})")
    if isinstance(e, hfe.OfflineModeIsEnabled):
        return _offline_error(entry)
    if isinstance(e, hfe.HfHubHTTPError):
        status = e.response.status_code if e.response is not None else "?"
        hint = " (set HF_TOKEN?)" if status in (401, 403) else ""
        return R1ChatError(f"the Hub answered HTTP {status} for {repo}/{repo_path}{hint}")
    if isinstance(e, httpx2.TimeoutException):
        return R1ChatError(f"timed out talking to {endpoint} for {repo_path}")
    if isinstance(e, httpx2.HTTPError):
        return R1ChatError(f"cannot reach {endpoint}: {e or type(e).__name__}")
    return R1ChatError(f"download of {repo_path} failed: {e}")


def _offline_error(entry: Entry) -> R1ChatError:
    return R1ChatError(
        f"HF_HUB_OFFLINE is set, so {entry.name} cannot be downloaded; unset "
        "it, or register a file you have with: r1chat models import FILE"
    )


def _hub_errors() -> tuple[type[BaseException], ...]:
    import httpx2
    from huggingface_hub import errors as hfe

    return (
        hfe.HfHubHTTPError,
        hfe.OfflineModeIsEnabled,
        hfe.FileMetadataError,
        httpx2.HTTPError,
        OSError,
    )


def resolve_remote(entry: Entry, index: int) -> Remote:
    """HEAD one file on the Hub: size, sha256, commit and where to GET it."""
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
    from huggingface_hub.utils import build_hf_headers

    assert entry.repo is not None
    repo_path = entry.repo_paths[index]
    url = hf_hub_url(entry.repo, repo_path, revision=entry.revision)
    try:
        meta = get_hf_file_metadata(url, timeout=constants.HF_HUB_ETAG_TIMEOUT)
    except _hub_errors() as e:
        raise _hub_error(e, entry, repo_path) from None
    etag = (meta.etag or "").strip('"').lower()
    if meta.size is None:
        raise R1ChatError(f"the Hub did not say the size of {entry.repo}/{repo_path}")
    if not meta.commit_hash:
        raise R1ChatError(
            f"{constants.ENDPOINT} does not look like a Hugging Face Hub "
            f"(no X-Repo-Commit for {repo_path}); check HF_ENDPOINT"
        )
    pinned = entry.sha256[index] if index < len(entry.sha256) else None
    hub_sha = etag if _HEX64.match(etag) else None
    if pinned and hub_sha and pinned != hub_sha:
        raise R1ChatError(
            f"{repo_path} on the Hub (sha256 {hub_sha}) is not the file the "
            f"catalog pins (sha256 {pinned}): the repo changed; pin a revision "
            "or update the sha256 in your catalog"
        )
    headers = build_hf_headers()
    headers["Accept-Encoding"] = "identity"
    if _origin(meta.location) != _origin(url):
        headers.pop("authorization", None)  # never send the token to a CDN
        headers.pop("Authorization", None)
    return Remote(
        repo_path=repo_path,
        local=store.entry_paths(entry)[index],
        size=int(meta.size),
        url=meta.location,
        etag=etag,
        commit=meta.commit_hash,
        sha256=pinned or hub_sha,
        git_sha1=etag if not (pinned or hub_sha) and _HEX40.match(etag) else None,
        headers=headers,
    )


def _origin(url: str) -> tuple[str, str, int | None]:
    u = urlsplit(url)
    return (u.scheme, (u.hostname or "").lower(), u.port)


# -- hashing in a second thread -----------------------------------------------------------


class _Hasher:
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


# -- HTTP bodies --------------------------------------------------------------------------------


class _Body(Protocol):
    status: int

    def header(self, name: str) -> str: ...

    def readinto(self, buf: memoryview) -> int: ...

    def close(self) -> None: ...


class _StdlibBody:
    """A GET through http.client, following redirects (the token stays on its origin)."""

    def __init__(self, url: str, headers: dict[str, str], timeout: float) -> None:
        origin = _origin(url)
        for _ in range(6):
            u = urlsplit(url)
            if u.scheme == "https":
                import httpx2

                conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                    u.hostname or "",
                    u.port,
                    timeout=timeout,
                    context=httpx2.create_ssl_context(),
                )
            else:
                conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=timeout)
            path = (u.path or "/") + (f"?{u.query}" if u.query else "")
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            location = resp.getheader("Location")
            if resp.status in (301, 302, 303, 307, 308) and location:
                resp.close()
                conn.close()
                url = urljoin(url, location)
                if _origin(url) != origin:
                    headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                continue
            self.status, self._resp, self._conn = resp.status, resp, conn
            return
        raise R1ChatError(f"too many redirects for {url}")

    def header(self, name: str) -> str:
        return self._resp.getheader(name) or ""

    def readinto(self, buf: memoryview) -> int:
        return self._resp.readinto(buf)

    def close(self) -> None:
        self._resp.close()
        self._conn.close()


class _SessionBody:
    """A GET through huggingface_hub's httpx client (used when a proxy is configured)."""

    def __init__(self, url: str, headers: dict[str, str], timeout: float) -> None:
        import httpx2
        from huggingface_hub.utils import get_session

        self._cm = get_session().stream(
            "GET",
            url,
            headers=headers,
            follow_redirects=True,
            timeout=httpx2.Timeout(timeout, connect=10),
        )
        self._resp = self._cm.__enter__()
        self.status = self._resp.status_code
        self._chunks: Iterator[bytes] = self._resp.iter_raw()  # as the network delivers
        self._left = memoryview(b"")

    def header(self, name: str) -> str:
        return str(self._resp.headers.get(name, ""))

    def readinto(self, buf: memoryview) -> int:
        if not self._left:
            self._left = memoryview(next(self._chunks, b""))
        n = min(len(buf), len(self._left))
        buf[:n] = self._left[:n]
        self._left = self._left[n:]
        return n

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


def _uses_proxy(url: str) -> bool:
    from urllib.request import getproxies, proxy_bypass

    u = urlsplit(url)
    proxies = getproxies()
    if not (proxies.get(u.scheme) or proxies.get("all")):
        return False
    return not proxy_bypass(u.hostname or "")


def _open(url: str, headers: dict[str, str], timeout: float) -> _Body:
    if _uses_proxy(url):
        return _SessionBody(url, headers, timeout)
    return _StdlibBody(url, headers, timeout)


def _transient() -> tuple[type[BaseException], ...]:
    """Errors after which the download goes on from the bytes on disk."""
    import httpx2

    return (OSError, http.client.HTTPException, httpx2.TransportError, _Incomplete, _Expired)


# -- the transfer ---------------------------------------------------------------------------


class _Incomplete(Exception):
    """The body ended early, or the server failed transiently: try again from here."""


class _Restart(_Incomplete):
    """The server ignored the Range request: the file starts over from byte 0."""


class _Expired(Exception):
    """The CDN refused a signed URL (expired): resolve it again."""


class _Tracker:
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

    def report(self, phase: str = "download", force: bool = False) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if force or now - self._last >= _PROGRESS_EVERY:
            self._last = now
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


def _valid_part(remote: Remote) -> int:
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


def _write_part_meta(remote: Remote, entry: Entry) -> None:
    meta = {
        "etag": remote.etag,
        "size": remote.size,
        "repo": entry.repo,
        "path": remote.repo_path,
        "commit": remote.commit,
    }
    store.part_meta_path(remote.local).write_text(json.dumps(meta), encoding="utf-8")


def _download(entry: Entry, index: int, remote: Remote, tracker: _Tracker, retries: int) -> Path:
    from huggingface_hub import constants

    part = store.part_path(remote.local)
    have = _valid_part(remote)
    _write_part_meta(remote, entry)
    timeout = float(constants.HF_HUB_DOWNLOAD_TIMEOUT)
    failures = 0
    with part.open("ab", buffering=0) as out:
        hasher = _Hasher(part, have, remote.size, remote.git_sha1 is not None)
        try:
            while (start := out.tell()) < remote.size:
                try:
                    _fetch(remote, out, start, hasher, tracker, timeout)
                    if out.tell() < remote.size:
                        raise _Incomplete(
                            f"connection closed at {out.tell():,} of {remote.size:,} bytes"
                        )
                except _transient() as e:
                    if isinstance(e, _Restart):
                        hasher.finish(check=False)
                        hasher = _Hasher(part, 0, remote.size, hasher.sha1 is not None)
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
    remote: Remote, out: Any, start: int, hasher: _Hasher, tracker: _Tracker, timeout: float
) -> None:
    headers = dict(remote.headers)
    if start:
        headers["Range"] = f"bytes={start}-"
    body = _open(remote.url, headers, timeout)
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
        body.close()


def _copy(body: _Body, out: Any, remote: Remote, hasher: _Hasher, tracker: _Tracker) -> None:
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
                    error = PullCancelled(
                        f"pull of {tracker.entry.name} cancelled; {remote.repo_path} kept "
                        "for the next pull to resume"
                    )
                    break
                k = body.readinto(buf[n:want])
                if not k:
                    break
                n += k
        except BaseException as e:
            error = e
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


def _refresh_url(entry: Entry, index: int, remote: Remote) -> str:
    try:
        fresh = resolve_remote(entry, index)
    except R1ChatError:
        return remote.url
    if fresh.etag != remote.etag or fresh.size != remote.size:
        raise R1ChatError(f"{remote.repo_path} changed on the Hub during the download; pull again")
    remote.headers = fresh.headers
    return fresh.url


def _verify(remote: Remote, digest: str, sha1: str | None) -> None:
    part = store.part_path(remote.local)
    if remote.sha256 and digest != remote.sha256:
        part.unlink(missing_ok=True)
        store.part_meta_path(remote.local).unlink(missing_ok=True)
        raise HashMismatch(
            f"sha256 mismatch for {remote.repo_path}: expected {remote.sha256}, got "
            f"{digest}; the download was deleted, pull again"
        )
    if remote.git_sha1 and sha1 != remote.git_sha1:
        part.unlink(missing_ok=True)
        store.part_meta_path(remote.local).unlink(missing_ok=True)
        raise HashMismatch(
            f"git sha1 mismatch for {remote.repo_path}: expected {remote.git_sha1}, got "
            f"{sha1}; the download was deleted, pull again"
        )


def _intact(path: Path) -> bool:
    """An installed file still reads as a whole GGUF (its header and tensor extent)."""
    from r1chat.models.fit import read_header
    from r1chat.models.gguf import GGUFError

    try:
        read_header(path)
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


# -- the whole pull ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PullResult:
    entry: Entry
    paths: tuple[Path, ...]
    downloaded: int  # bytes fetched by this pull
    resumed: int  # bytes that were on disk already
    seconds: float  # the whole pull, Hub requests included
    already: bool  # everything was installed before
    transfer_seconds: float = 0.0  # first byte requested to last file verified and in place
    checks: tuple[str, ...] = ()  # how each fetched file was verified ("sha256", ...)


def pull(
    entry: Entry,
    *,
    progress: ProgressFn | None = None,
    retries: int = RETRIES,
    cancel: threading.Event | None = None,
) -> PullResult:
    """Download, verify and install `entry`'s files (resuming any partial ones).

    Blocking; a UI runs it in a worker thread, shows `progress` (called from that
    thread) and sets `cancel` to stop it (PullCancelled; the partial file is kept).
    """
    from huggingface_hub import constants

    if entry.remote or not entry.files:
        raise R1ChatError(f"{entry.name} is remote-only: nothing to download ({entry.note})")
    t0 = time.monotonic()
    local = store.entry_paths(entry)
    if all(p.is_file() and _intact(p) for p in local):
        return PullResult(entry, tuple(local), 0, 0, 0.0, True)
    if constants.is_offline_mode():
        raise _offline_error(entry)
    folder = store.entry_dir(entry)
    folder.mkdir(parents=True, exist_ok=True)
    with store.entry_lock(entry):
        for p in local:
            if p.is_file() and not _intact(p):
                p.unlink()  # cut short (a crash before the OS wrote it all): fetch it again
        remotes: list[Remote | None] = [
            None if p.is_file() else resolve_remote(entry, i) for i, p in enumerate(local)
        ]
        sizes = [r.size if r else p.stat().st_size for r, p in zip(remotes, local, strict=True)]
        have = [(_valid_part(r) if r else s) for r, s in zip(remotes, sizes, strict=True)]
        needed = sum(s - h for s, h in zip(sizes, have, strict=True))
        free = store.free_bytes(folder)
        if needed + SPACE_MARGIN > free:
            raise R1ChatError(
                f"not enough disk space in {folder}: {entry.name} needs "
                f"{human(needed)} more, {human(free)} free (R1CHAT_MODELS "
                "can move the models folder to a bigger disk)"
            )
        tracker = _Tracker(entry, len(local), sum(sizes), sum(have), progress, cancel)
        t1 = time.monotonic()
        checks: list[str] = []
        for i, remote in enumerate(remotes):
            if remote is None:
                continue
            tracker.file, tracker.index = remote.repo_path, i + 1
            tracker.report(force=True)
            _download(entry, i, remote, tracker, retries)
            checks.append(remote.check)
        tracker.report("done", force=True)
    end = time.monotonic()
    return PullResult(
        entry,
        tuple(local),
        tracker.done - tracker.resumed,
        tracker.resumed,
        end - t0,
        False,
        end - t1,
        tuple(checks),
    )
