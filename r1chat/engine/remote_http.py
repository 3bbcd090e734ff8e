"""HTTP for the remote engine: the client library, endpoint URLs, a cancellable response
reader, and one-line messages for everything that can go wrong on the wire.

The client is httpx as huggingface-hub brings it: `httpx2` with huggingface-hub 2.x,
`httpx` with older versions (the same API). A response body is read by a daemon thread
that hands network chunks to the caller through a queue, so the caller can give up at
once on Ctrl-C even while the server is silent; giving up shuts the socket down, which
tells the server to stop generating.
"""

from __future__ import annotations

import contextlib
import importlib
import queue
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from r1chat.errors import R1ChatError, UsageError

POLL_S = 0.05
"""How often a waiting reader looks at the cancel flag (seconds)."""

MAX_ERROR_BODY = 64 * 1024


def httpx_module() -> Any:
    """`httpx2` (huggingface-hub >= 2) or `httpx` (older huggingface-hub): the same API."""
    try:
        return importlib.import_module("httpx2")
    except ImportError:  # pragma: no cover - depends on the installed huggingface-hub
        try:
            return importlib.import_module("httpx")
        except ImportError:
            raise R1ChatError(
                "the remote backend needs httpx (pip install httpx, or huggingface-hub>=2)"
            ) from None


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


# -- messages ----------------------------------------------------------------------------


class Scrubber:
    """Removes secrets (the API key, URL credentials) from text shown to the user."""

    def __init__(self, *secrets: str | None) -> None:
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def __call__(self, text: str, limit: int = 200) -> str:
        for s in self.secrets:
            text = text.replace(s, "***")
        text = re.sub(r"(?i)(bearer\s+|api[_-]?key[\"'=:\s]+)[A-Za-z0-9._\-]{8,}", r"\1***", text)
        text = " ".join(text.split())
        return text if len(text) <= limit else text[: limit - 1] + "…"


def error_detail(body: bytes, scrub: Scrubber) -> str:
    """The server's own words from an error body: OpenAI's `error.message`, FastAPI's
    `detail`, or the start of the text."""
    import json

    text = body[:MAX_ERROR_BODY].decode("utf-8", errors="replace").strip()
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        err = obj.get("error", obj)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail") or err.get("msg")
            if msg is None and isinstance(obj.get("detail"), (str, list)):
                msg = obj["detail"]
        else:
            msg = err
        if msg is not None:
            return scrub(msg if isinstance(msg, str) else json.dumps(msg))
    if text.lstrip().startswith("<"):
        return "an HTML page"
    return scrub(text) if text else ""


def transport_message(
    e: BaseException,
    endpoint: Endpoint,
    scrub: Scrubber,
    *,
    connect_timeout: float,
    read_timeout: float,
    started: bool,
) -> str:
    """One line for a transport failure (`started`: part of the reply had arrived)."""
    httpx = httpx_module()
    where = endpoint.shown
    if isinstance(e, httpx.ConnectTimeout):
        return f"timed out connecting to {where} after {connect_timeout:g} s"
    if isinstance(e, httpx.ConnectError):
        low = str(e).lower()
        if "refused" in low:
            why = "connection refused (is the server running?)"
        elif "name or service" in low or "nodename" in low or "getaddrinfo" in low:
            why = f"unknown host {endpoint.host!r}"
        elif "ssl" in low or "certificate" in low:
            why = f"TLS failed: {scrub(str(e), 120)}"
        else:
            why = scrub(str(e), 120) or type(e).__name__
        return f"cannot connect to {where}: {why}"
    if isinstance(e, httpx.ReadTimeout):
        if started:
            return (
                f"{endpoint.host} sent nothing for {read_timeout:g} s in the middle of "
                "the reply; the answer is incomplete"
            )
        return (
            f"{endpoint.host} did not answer within {read_timeout:g} s "
            "(raise the remote's timeout if the model is slow to start)"
        )
    if isinstance(e, httpx.TimeoutException):
        return f"timed out talking to {where}"
    if isinstance(e, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        if started:
            return f"the connection to {endpoint.host} broke mid-reply; the answer is incomplete"
        return f"the connection to {endpoint.host} broke before the reply started"
    if isinstance(e, httpx.UnsupportedProtocol):
        return f"bad endpoint URL {where}"
    if isinstance(e, httpx.HTTPError):
        return f"request to {where} failed: {scrub(str(e), 120) or type(e).__name__}"
    return f"request to {where} failed: {type(e).__name__}"


def is_transient(e: BaseException) -> bool:
    """A failure worth retrying when nothing of the reply has arrived yet."""
    httpx = httpx_module()
    if isinstance(e, httpx.TimeoutException):
        return False
    return isinstance(e, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError))


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
