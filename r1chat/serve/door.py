"""The front door of `r1chat serve`: who may talk to it, and how much.

A web page in the user's browser can send requests to a local port. Two rules keep it out:

- **Host.** A page that rebinds its own DNS name to 127.0.0.1 (DNS rebinding, Ollama's
  CVE-2024-28224) reaches the server with its own name in `Host`. Allowed: IP addresses
  (a rebinding always carries a name), `localhost` and `*.localhost`, this machine's name
  and the name the server was started on, and the names in `--allow-host` /
  `[serve] allowed_hosts`.
- **Origin.** Browsers say which page a request comes from. Allowed: none but pages on
  this machine (`http(s)://localhost`, `127.0.0.1`, `[::1]`, any port), plus
  `--allow-origin` / `[serve] allowed_origins` (`*` for any). Requests without an
  Origin (curl, SDKs, editors) are not browsers' and pass. Allowed origins get CORS
  headers and answered preflights; others a 403.

And two bounds: a request body must be `application/json` (a page's form cannot send
that without a preflight; a request with neither an Origin nor a Content-Type, as litellm
and aider send to Ollama's routes, is no page's, and is read as JSON), and at most
`core.request.input_limit` of the context (32 bytes a token, at least 1 MiB), refused
with a 413 before it is read (or as soon as a chunked one passes it). Any error from the
routes becomes one log line and a 500, never a traceback.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from r1chat.core.request import BYTES_PER_TOKEN
from r1chat.serve.dialects import error_body_for
from r1chat.serve.errors import ApiError

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
BODY_METHODS = ("POST", "PUT", "PATCH")
CORS_MAX_AGE = "600"


class TooLarge(Exception):
    """A chunked body went past the bound while it was read."""


@dataclass(frozen=True, slots=True)
class Door:
    listen_host: str
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    body_limit: int = 1 << 20

    def host_problem(self, host: str | None) -> str | None:
        """Why a request with this `Host` header is refused (None: it may come in)."""
        if not host:
            return None  # HTTP/1.0: no browser sends that
        if (name := _hostname(host)) is None:
            return f"Host {host[:100]!r} is not a host name (and a port)"
        if _is_ip(name) or name == "localhost" or name.endswith(".localhost"):
            return None
        known = {self.listen_host.lower(), socket.gethostname().lower(), "*"}
        allowed = {h.lower() for h in self.allowed_hosts}
        if name in known - {"*"} or "*" in allowed or name in allowed:
            return None
        if any(h.startswith(".") and name.endswith(h) for h in allowed):
            return None
        return (
            f"Host {name!r} is not this server (a web page's DNS name?); if you reach it "
            f"by that name, start it with --allow-host {name}"
        )

    def origin_problem(self, origin: str) -> str | None:
        """Why a browser request from page `origin` is refused (None: allowed)."""
        if self.origin_allowed(origin):
            return None
        return (
            f"web pages from {origin} may not use this server; allow them with "
            f"--allow-origin {origin}"
        )

    def origin_allowed(self, origin: str) -> bool:
        if "*" in self.allowed_origins or origin.rstrip("/") in self.allowed_origins:
            return True
        found = _ORIGIN.fullmatch(origin.strip().lower())
        if found is None:  # not `scheme://host[:port]`: no page of this machine's
            return False
        host = found["host"].strip("[]")
        return host in LOOPBACK_NAMES or host.endswith(".localhost") or _is_loopback_ip(host)


_HOST = r"(?P<host>\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(?::(?P<port>[0-9]{1,5}))?"
_ORIGIN = re.compile(r"(?:https?)://" + _HOST + "/?")
_HOST_HEADER = re.compile(_HOST)


def _hostname(host: str) -> str | None:
    """`example.com:8080` → `example.com`, `[::1]:80` → `::1`; None for what is not a host
    name and a port (`localhost:80@evil.com`)."""
    found = _HOST_HEADER.fullmatch(host.strip().lower())
    return found["host"].strip("[]") if found is not None else None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _is_loopback_ip(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class FrontDoor:
    """ASGI middleware keeping `door`'s rules; `log` gets one line per refusal or error."""

    def __init__(self, app: ASGIApp, door: Door, log: Callable[[str], None]) -> None:
        self.app, self.door, self.log = app, door, log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        what = f"{scope['method']} {scope['path']}"
        started = False

        async def refuse(error: ApiError) -> None:
            self.log(f"{what} {error.status} · {error.message}")
            await _send_error(send, error, cors, scope["path"])

        cors = None
        if problem := self.door.host_problem(headers.get("host")):
            return await refuse(ApiError(problem, status=403, code="host_not_allowed"))
        if (origin := headers.get("origin")) is not None:
            if problem := self.door.origin_problem(origin):
                return await refuse(ApiError(problem, status=403, code="origin_not_allowed"))
            cors = origin
        if scope["method"] == "OPTIONS" and cors and "access-control-request-method" in headers:
            return await _preflight(send, cors, headers)
        if scope["method"] in BODY_METHODS:
            kind = headers.get("content-type")
            if (kind is not None or cors is not None) and (
                problem := _content_type_problem(kind)
            ) is not None:  # (no Origin and no type: litellm, aider; never a browser page)
                return await refuse(ApiError(problem, status=415, code="unsupported_media_type"))
            length = headers.get("content-length", "")
            if length.isdigit() and int(length) > self.door.body_limit:
                return await refuse(_too_large(int(length), self.door.body_limit))
            receive = _bounded(receive, self.door.body_limit)

        async def send_with_cors(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if cors is not None:
                    message = {**message, "headers": [*message["headers"], *_cors(cors)]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_cors)
        except Exception as e:  # a bug of ours: one line, a 500, the server goes on
            message = f"internal error: {type(e).__name__}: {e}"
            self.log(f"{what} 500 · {message}")
            if not started:
                error = ApiError(message, status=500, kind="server_error")
                await _send_error(send, error, cors, scope["path"])


def _content_type_problem(value: str | None) -> str | None:
    kind = (value or "").split(";", 1)[0].strip().lower()
    if kind == "application/json":
        return None
    got = f"not {kind!r}" if kind else "none was sent"
    return (
        f"the request body must be JSON with Content-Type: application/json ({got}; "
        "curl: -H 'Content-Type: application/json')"
    )


def _too_large(size: int | None, limit: int) -> ApiError:
    """The 413 for a body of `size` bytes (None: a chunked one, read past the bound)."""
    what = f"{size:,} bytes" if size is not None else f"more than {limit:,} bytes (sent in chunks)"
    return ApiError(
        f"the request body is {what}; this server takes at most {limit:,} (what its "
        f"context could use: {BYTES_PER_TOKEN} bytes a token; start it with a larger --ctx "
        "to send more)",
        status=413,
        code="request_too_large",
    )


def _bounded(receive: Receive, limit: int) -> Receive:
    """`receive`, raising TooLarge once the body passes `limit` bytes."""
    seen = 0

    async def bounded() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise TooLarge(_too_large(None, limit).message)
        return message

    return bounded


def _cors(origin: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"vary", b"Origin"),
    ]


async def _preflight(send: Send, origin: str, headers: dict[str, str]) -> None:
    asked = headers.get("access-control-request-headers", "")
    allow = [
        *_cors(origin),
        (b"access-control-allow-methods", b"GET, POST, DELETE, HEAD, OPTIONS"),
        (b"access-control-allow-headers", asked.encode("latin-1") or b"content-type"),
        (b"access-control-max-age", CORS_MAX_AGE.encode()),
    ]
    await send({"type": "http.response.start", "status": 204, "headers": allow})
    await send({"type": "http.response.body", "body": b""})


async def _send_error(send: Send, error: ApiError, cors: str | None, path: str) -> None:
    body = json.dumps(error_body_for(path)(error)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    if cors is not None:
        headers += _cors(cors)
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
