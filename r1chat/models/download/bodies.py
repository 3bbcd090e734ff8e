"""A ranged GET's body read into reused buffers: http.client, or huggingface_hub's
session when a proxy is configured."""

from __future__ import annotations

import contextlib
import http.client
import socket
from collections.abc import Iterator
from typing import Protocol
from urllib.parse import urljoin, urlsplit

from r1chat.core.errors import R1ChatError


class Body(Protocol):
    status: int

    def header(self, name: str) -> str: ...

    def readinto(self, buf: memoryview) -> int: ...

    def abort(self) -> None:
        """From another thread: end the connection, so a read waiting on it returns now."""
        ...

    def close(self) -> None: ...


class _StdlibBody:
    """A GET through http.client, following redirects (the token stays on its origin)."""

    def __init__(self, url: str, headers: dict[str, str], timeout: float) -> None:
        start = origin(url)
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
                if origin(url) != start:
                    headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                continue
            self.status, self._resp, self._conn = resp.status, resp, conn
            return
        raise R1ChatError(f"too many redirects for {url}")

    def header(self, name: str) -> str:
        return self._resp.getheader(name) or ""

    def readinto(self, buf: memoryview) -> int:
        return self._resp.readinto(buf)

    def abort(self) -> None:
        with contextlib.suppress(OSError, AttributeError):
            self._conn.sock.shutdown(socket.SHUT_RDWR)

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

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._resp.close()

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


def _uses_proxy(url: str) -> bool:
    from urllib.request import getproxies, proxy_bypass

    u = urlsplit(url)
    proxies = getproxies()
    if not (proxies.get(u.scheme) or proxies.get("all")):
        return False
    return not proxy_bypass(u.hostname or "")


def open_body(url: str, headers: dict[str, str], timeout: float) -> Body:
    if _uses_proxy(url):
        return _SessionBody(url, headers, timeout)
    return _StdlibBody(url, headers, timeout)


def origin(url: str) -> tuple[str, str, int | None]:
    u = urlsplit(url)
    return (u.scheme, (u.hostname or "").lower(), u.port)
