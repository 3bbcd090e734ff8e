"""A loopback stand-in for the Hugging Face Hub's file endpoints, for download tests.

It answers what `huggingface_hub` (2.x) and r1chat's downloader ask for:

- `HEAD/GET /{repo}/resolve/{revision}/{path}`: like the Hub for an LFS file, a 302 to a
  "CDN" carrying `X-Repo-Commit`, `X-Linked-Etag` (the sha256), `X-Linked-Size` and `ETag`.
  The CDN is a second listener on another port (another origin, as on the real Hub, so
  the client stops at the 302 and drops the token). With `redirect=False` the file is
  served from the resolve URL itself (as for a small git file).
- `GET /cdn/{sha256}` on the CDN port: the bytes, honouring `Range: bytes=N-` / `N-M`.
- Errors as the Hub sends them: unknown repo -> 401 `X-Error-Code: RepoNotFound`, gated
  repo without the right token -> 401 `GatedRepo`, missing file -> 404 `EntryNotFound`.

Faults on demand: `drop_after(path, nbytes, times)` closes the connection mid-body,
`rate` throttles the body (bytes/second), `fail_status(path, code)` answers a status.
Every request is logged in `requests` for assertions (method, path, Range, token).
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HubFile:
    repo: str
    path: str
    data: bytes | None = None  # in memory, or
    source: Path | None = None  # on disk (large benchmark files, served with sendfile)
    sha256: str = ""
    size: int = 0
    lfs: bool = True  # False: a plain git file (ETag is its git blob sha1, no redirect)

    def read(self, start: int, end: int) -> bytes:
        if self.data is not None:
            return self.data[start:end]
        assert self.source is not None
        with self.source.open("rb") as f:
            f.seek(start)
            return f.read(end - start)


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    token: str | None
    host: str


@dataclass
class _Drop:
    nbytes: int
    times: int


@dataclass
class FakeHub:
    """Start with `start()` (or as a context manager); `endpoint` goes into HF_ENDPOINT."""

    redirect: bool = True
    rate: int | None = None  # bytes per second for file bodies, None = as fast as possible
    ignore_range: bool = False  # answer 200 with the whole file, like a server without ranges
    files: dict[tuple[str, str], HubFile] = field(default_factory=dict)
    gated: dict[str, str] = field(default_factory=dict)  # repo -> the token that may read it
    requests: list[Request] = field(default_factory=list)
    _drops: dict[str, _Drop] = field(default_factory=dict)
    _status: dict[str, int] = field(default_factory=dict)
    _servers: list[ThreadingHTTPServer] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- content --------------------------------------------------------------------

    def add(
        self,
        repo: str,
        path: str,
        data: bytes | Path,
        *,
        sha256: str | None = None,
        lfs: bool = True,
    ) -> HubFile:
        """Serve `data` as `repo`/`path`; `sha256` advertises another digest (a corrupt CDN);
        `lfs=False` serves it like a small file kept in git."""
        if isinstance(data, Path):
            f = HubFile(
                repo,
                path,
                source=data,
                sha256=sha256 or _sha256_file(data),
                size=data.stat().st_size,
            )
        else:
            f = HubFile(
                repo,
                path,
                data=data,
                sha256=sha256 or hashlib.sha256(data).hexdigest(),
                size=len(data),
            )
        f.lfs = lfs
        self.files[(repo, path)] = f
        return f

    def gate(self, repo: str, token: str) -> None:
        """Make `repo` gated: only `Authorization: Bearer <token>` may read it."""
        self.gated[repo] = token

    def drop_after(self, path: str, nbytes: int, times: int = 1) -> None:
        """Cut the connection after `nbytes` of body, for the next `times` GETs of `path`."""
        self._drops[path] = _Drop(nbytes, times)

    def fail_status(self, path: str, status: int | None) -> None:
        self._status.pop(path, None) if status is None else self._status.__setitem__(path, status)

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> FakeHub:
        for role in ("hub", "cdn"):
            server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self, role))
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
            self._servers.append(server)
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._servers[0].server_address[1]}"

    @property
    def cdn(self) -> str:
        return f"http://127.0.0.1:{self._servers[1].server_address[1]}"

    def url(self, repo: str, path: str, revision: str = "main") -> str:
        return f"{self.endpoint}/{repo}/resolve/{revision}/{path}"

    def gets(self, path: str) -> list[Request]:
        """The GET requests that fetched bytes of `path` (on the CDN or the resolve URL)."""
        f = next((f for (r, p), f in self.files.items() if p == path), None)
        keys = {f"/cdn/{f.sha256}"} if f else set()
        return [
            r
            for r in self.requests
            if r.method == "GET" and (r.path in keys or r.path.endswith("/" + path))
        ]


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _make_handler(hub: FakeHub, role: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def do_HEAD(self) -> None:
            self._handle(head=True)

        def do_GET(self) -> None:
            self._handle(head=False)

        # -- routing --

        def _handle(self, head: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            auth = self.headers.get("Authorization", "")
            token = auth[7:] if auth.startswith("Bearer ") else None
            with hub._lock:
                hub.requests.append(
                    Request(self.command, path, self.headers.get("Range"), token, role)
                )
            if role == "cdn":
                return self._cdn(path, head)
            parts = path.lstrip("/").split("/")
            if len(parts) < 5 or parts[2] != "resolve":
                return self._error(404, "RepoNotFound", "Repository not found", head)
            repo, _revision, fpath = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
            if not any(r == repo for r, _ in hub.files) and repo not in hub.gated:
                return self._error(401, "RepoNotFound", "Repository not found", head)
            if repo in hub.gated and token != hub.gated[repo]:
                msg = (
                    f"Access to model {repo} is restricted. You must have access to it "
                    "and be authenticated to access it. Please log in."
                )
                return self._error(401, "GatedRepo", msg, head)
            if (code := hub._status.get(fpath)) is not None:
                return self._error(code, None, f"status {code}", head)
            f = hub.files.get((repo, fpath))
            if f is None:
                return self._error(404, "EntryNotFound", f"{fpath} does not exist", head)
            common = {
                "X-Repo-Commit": COMMIT,
                "ETag": f'"{f.sha256}"',
                "X-Linked-Etag": f'"{f.sha256}"',
                "X-Linked-Size": str(f.size),
                "Accept-Ranges": "bytes",
            }
            if not f.lfs:
                blob = f.read(0, f.size)
                git = hashlib.sha1(b"blob %d\0" % len(blob) + blob).hexdigest()
                common = {"X-Repo-Commit": COMMIT, "ETag": f'"{git}"', "Accept-Ranges": "bytes"}
                return self._body(f, head, common)
            if hub.redirect:
                self.send_response(302)
                for k, v in common.items():
                    self.send_header(k, v)
                self.send_header("Location", f"{hub.cdn}/cdn/{f.sha256}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            return self._body(f, head, common)

        def _cdn(self, path: str, head: bool) -> None:
            sha = path.rsplit("/", 1)[-1]
            f = next((f for f in list(hub.files.values()) if f.sha256 == sha), None)
            if f is None or not path.startswith("/cdn/"):
                return self._error(404, None, "NoSuchKey", head)
            if (code := hub._status.get(f.path)) is not None:
                return self._error(code, None, f"status {code}", head)
            return self._body(f, head, {"ETag": f'"{f.sha256}"', "Accept-Ranges": "bytes"})

        # -- responses --

        def _error(self, code: int, error_code: str | None, message: str, head: bool) -> None:
            body = b"" if head else message.encode()
            self.send_response(code)
            if error_code:
                self.send_header("X-Error-Code", error_code)
            self.send_header("X-Error-Message", message)
            self.send_header("X-Repo-Commit", COMMIT) if error_code == "EntryNotFound" else None
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(message.encode())))
            self.end_headers()
            self.wfile.write(body)

        def _body(self, f: HubFile, head: bool, headers: dict[str, str]) -> None:
            start, end = 0, f.size
            rng = self.headers.get("Range")
            status = 200
            if rng and rng.startswith("bytes=") and not hub.ignore_range:
                a, _, b = rng[6:].partition("-")
                start = int(a) if a else 0
                end = int(b) + 1 if b else f.size
                if start >= f.size:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{f.size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                end = min(end, f.size)
                status = 206
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(end - start))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{f.size}")
            self.end_headers()
            if head:
                return
            limit = end
            drop = hub._drops.get(f.path)
            if drop and drop.times > 0:
                drop.times -= 1
                limit = min(end, start + drop.nbytes)
            try:
                self._send(f, start, limit)
            except (BrokenPipeError, ConnectionResetError):
                return
            if limit < end:  # simulate a dropped connection: close without the rest
                self.close_connection = True
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)

        def _send(self, f: HubFile, start: int, end: int) -> None:
            if hub.rate is None and f.source is not None:
                with f.source.open("rb") as src:
                    self.connection.sendfile(src, start, end - start)
                return
            step = 1 << 20 if hub.rate is None else max(1024, hub.rate // 20)
            pos = start
            while pos < end:
                n = min(step, end - pos)
                self.wfile.write(f.read(pos, pos + n))
                pos += n
                if hub.rate is not None:
                    time.sleep(n / hub.rate)

    return Handler


def point_client_at(hub: FakeHub, monkeypatch: Any, tmp_path: Path) -> None:
    """Make the in-process huggingface_hub client talk to `hub`, with no stored token."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
    monkeypatch.setattr(
        constants,
        "HUGGINGFACE_CO_URL_TEMPLATE",
        hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}",
    )
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"))


def make_gguf_bytes(size: int, seed: int = 0) -> bytes:
    """`size` bytes that start like a GGUF file (for tests that only move bytes)."""
    header = b"GGUF" + (3).to_bytes(4, "little") + bytes(16)
    rnd = hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1)
    return (header + rnd)[:size] if size > len(header) else header[:size]


if __name__ == "__main__":  # serve one file: print its URL, log requests to stderr
    import sys

    hub = FakeHub().start()
    target = Path(sys.argv[1])
    hub.add("test/repo", target.name, target)
    print(hub.url("test/repo", target.name), flush=True)
    seen = 0
    try:
        while True:
            time.sleep(0.05)
            for r in hub.requests[seen:]:
                print(f"{r.method} {r.host} {r.path} {r.range or '-'}", file=sys.stderr, flush=True)
            seen = len(hub.requests)
    except KeyboardInterrupt:
        hub.stop()
    os._exit(0)
