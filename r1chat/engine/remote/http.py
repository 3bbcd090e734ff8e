"""HTTP for the remote engine: the client library, endpoint URLs, the retry policy and a
cancellable response reader (`wording` words what goes wrong).

The client is httpx2, the one huggingface-hub uses. A response body is read by a daemon
thread that hands network chunks to the caller through a queue, so the caller can give
up at once on Ctrl-C even while the server is silent; giving up shuts the socket down,
which tells the server to stop generating.
"""

from __future__ import annotations

import contextlib
import queue
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from r1chat.core.errors import UsageError

POLL_S = 0.05
"""How often a waiting reader looks at the cancel flag (seconds)."""
RETRIES = 3
BACKOFF_S = 0.5  # first retry delay; doubled each time, with jitter
MAX_RETRY_AFTER_S = 30.0
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504, 529})

MAX_ERROR_BODY = 64 * 1024


def httpx_module() -> Any:
    """httpx2 (huggingface-hub's client), imported when a remote is first used."""
    import httpx2

    return httpx2


# -- endpoints ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An OpenAI-compatible API root, e.g. `http://gpu-box:8000/v1`."""

    base: str  # scheme://[user:pass@]host[:port]/path, no trailing slash
    params: tuple[tuple[str, str], ...] = ()  # query parameters (some gateways need them)

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        """Accept `host:port`, `http://host:port`, `.../v1`, `.../v1/chat/completions`."""
        text = url.strip()
        if not text:
            raise UsageError("empty endpoint URL")
        if "://" not in text:
            text = "http://" + text
        try:
            parts = urlsplit(text)
            host = parts.hostname
            _ = parts.port  # raises ValueError for a bad port
        except ValueError:
            raise UsageError(f"bad endpoint URL {_shown(url)!r}") from None
        if parts.scheme not in ("http", "https") or not host:
            raise UsageError(
                f"bad endpoint URL {_shown(url)!r}: expected http(s)://HOST[:PORT][/v1]"
            )
        path = parts.path.rstrip("/")
        for suffix in ("/chat/completions", "/completions", "/models"):
            if path.endswith(suffix):
                path = path[: -len(suffix)]
                break
        if not path:
            path = "/v1"
        base = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
        return cls(base, tuple(parse_qsl(parts.query, keep_blank_values=True)))

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    @property
    def shown(self) -> str:
        """The URL without credentials or query: safe to print."""
        return _shown(self.base)

    @property
    def host(self) -> str:
        parts = urlsplit(self.base)
        return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def _shown(url: str) -> str:
    try:
        parts = urlsplit(url.strip())
        netloc = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return "<bad URL>"


def is_transient(e: BaseException) -> bool:
    """A failure worth retrying when nothing of the reply has arrived yet."""
    httpx = httpx_module()
    if isinstance(e, httpx.TimeoutException):
        return False
    return isinstance(e, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError))


# -- retries ----------------------------------------------------------------------------


def retry_delay(attempt: int, retry_after: float | None, backoff: float) -> float:
    """Seconds before retry `attempt` (from 0): the server's `Retry-After` (capped), else
    exponential backoff with jitter."""
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER_S)
    return backoff * (2**attempt) * random.uniform(0.8, 1.2)


def retry_after(value: str | None) -> float | None:
    """A `Retry-After` header in seconds (None if absent or a date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def sleep(seconds: float, cancelled: Callable[[], bool]) -> bool:
    """Wait, unless cancelled first (then False)."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if cancelled():
            return False
        time.sleep(min(left, 0.05))
    return not cancelled()


# -- a response read by a thread ----------------------------------------------------------

HEAD, DATA, END, ERROR = "head", "data", "end", "error"


class ResponseReader:
    """Sends one request from a daemon thread and queues what comes back.

    Items: (HEAD, response) once the status and headers are in, then (DATA, bytes) per
    network chunk, then (END, None); or (ERROR, exception) at any point.
    """

    def __init__(
        self,
        client: Any,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        params: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._net: Any = None  # the network stream, to shut its socket down on close()
        self.content_type = ""  # set by the caller from the response head
        request = client.build_request(
            method,
            url,
            json=json,
            headers=headers,
            params=list(params) or None,
            extensions={"trace": self._trace},
        )
        self._thread = threading.Thread(
            target=self._run, args=(client, request), name="r1chat-remote", daemon=True
        )
        self._thread.start()

    def _trace(self, name: str, info: dict[str, Any]) -> None:
        if name in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            self._net = info.get("return_value")

    def _run(self, client: Any, request: Any) -> None:
        put = self._queue.put
        try:
            response = client.send(request, stream=True)
        except BaseException as e:
            self._finished.set()
            put((ERROR, e))
            return
        try:
            self._net = response.extensions.get("network_stream") or self._net
            put((HEAD, response))
            if not self._stop.is_set():
                for chunk in response.iter_bytes():
                    put((DATA, chunk))
                    if self._stop.is_set():
                        break
                else:
                    put((END, None))
        except BaseException as e:
            put((ERROR, e))
        finally:
            self._finished.set()
            with contextlib.suppress(Exception):
                response.close()

    def get(self, cancelled: Callable[[], bool]) -> tuple[str, Any] | None:
        """The next item; None as soon as `cancelled()` is true while waiting."""
        q = self._queue
        try:
            return q.get_nowait()
        except queue.Empty:
            pass
        while True:
            if cancelled():
                return None
            try:
                return q.get(timeout=POLL_S)
            except queue.Empty:
                continue

    def read_body(self, cancelled: Callable[[], bool], limit: int = MAX_ERROR_BODY) -> bytes:
        """The rest of the body, up to `limit` bytes (for error messages)."""
        parts: list[bytes] = []
        size = 0
        while size < limit:
            item = self.get(cancelled)
            if item is None or item[0] != DATA:
                break
            parts.append(item[1])
            size += len(item[1])
        return b"".join(parts)[:limit]

    def close(self) -> None:
        """Stop reading; if the response is still coming, cut the connection."""
        self._stop.set()
        if self._finished.is_set():
            return
        net = self._net
        if net is not None:
            with contextlib.suppress(Exception):
                sock = net.get_extra_info("socket")
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
