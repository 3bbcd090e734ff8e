"""What the remote engine says when something goes wrong: one line each, no secrets.

`Scrubber` takes the API key and URL credentials out of anything shown; `Wording` words
every failure of one endpoint (HTTP statuses, transport errors, a stream that broke or
is not OpenAI's) and says whether it is worth retrying (`Retry`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from r1chat.core.errors import R1ChatError
from r1chat.engine.remote.http import MAX_ERROR_BODY, Endpoint, httpx_module, is_transient

_NO_MODEL = re.compile(
    r"model.{0,80}(does ?n[o']t exist|not exist|not found)|(unknown|no such|invalid) model", re.I
)


class RemoteError(R1ChatError):
    """A failure of the server or the connection; `status` is the HTTP status if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Retry(Exception):
    """Nothing of the reply has arrived and the failure may pass: try again."""

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.message, self.delay = message, delay


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


class Wording:
    """The messages for one endpoint. `deltas` in the methods below: how much of the
    reply had arrived (0: none, so the failure may be retried)."""

    def __init__(
        self,
        endpoint: Endpoint,
        scrub: Scrubber,
        *,
        key_env: str | None,
        has_key: bool,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        self.endpoint, self.scrub = endpoint, scrub
        self.key_env, self.has_key = key_env, has_key
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout

    def transport(self, e: BaseException, *, started: bool) -> str:
        return transport_message(
            e,
            self.endpoint,
            self.scrub,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            started=started,
        )

    def failure(self, e: BaseException, deltas: int) -> Exception:
        if not deltas and is_transient(e):
            return Retry(self.transport(e, started=False))
        return RemoteError(self.transport(e, started=bool(deltas)))

    def cut(self, deltas: int) -> Exception:
        if not deltas:
            return Retry(f"{self.endpoint.host} closed the stream before the reply started")
        return RemoteError(
            f"{self.endpoint.host} closed the stream mid-reply; the answer is incomplete"
        )

    def garbage(self, data: bytes, deltas: int) -> Exception:
        text = self.scrub(data.decode("utf-8", errors="replace"), 60)
        what = f"it streamed {text!r} where JSON was expected"
        if deltas:
            return RemoteError(
                f"{self.endpoint.host} sent a malformed event mid-reply ({what}); "
                "the answer is incomplete"
            )
        return RemoteError(self.not_openai(what))

    def stream_error(self, obj: dict[str, Any], deltas: int) -> Exception:
        detail = error_detail(json.dumps(obj).encode(), self.scrub) or "unknown error"
        if deltas:
            return RemoteError(
                f"{self.endpoint.host} failed mid-reply: {detail}; the answer is incomplete"
            )
        return RemoteError(f"{self.endpoint.host} failed: {detail}")

    def not_openai(self, why: str) -> str:
        return f"{self.endpoint.shown} does not look like an OpenAI-compatible API: {why}"

    def status(
        self,
        status: int,
        body: bytes,
        what: str,
        *,
        model: str,
        served: Callable[[], str],
        detail: str | None = None,
    ) -> str:
        """An HTTP error status as one line; `served()` lists the server's models (asked
        only when the server says it lacks `model`)."""
        host = self.endpoint.host
        if detail is None:
            detail = error_detail(body, self.scrub)
        said = f": {detail}" if detail else ""
        reason = _reason(status)
        if status in (401, 403):
            if not self.has_key:
                hint = (
                    "no API key was sent: name the variable holding it with "
                    "--api-key-env NAME (or api_key_env in the remote's config)"
                )
            else:
                hint = f"check the key in ${self.key_env}" if self.key_env else "check the key"
            return f"{host} refused the request ({status} {reason}{said}); {hint}"
        if status in (400, 404) and what.startswith("POST") and _NO_MODEL.search(detail):
            return f"{host} does not serve model {model!r}{said}{served()}"
        if status == 404:
            return (
                f"{self.endpoint.shown}: {what} not found (404){said}; is this an "
                "OpenAI-compatible API root? (it usually ends in /v1)"
            )
        if 300 <= status < 400:
            return f"{host} redirects {what} ({status}); give the final URL with --endpoint"
        if status == 429:
            return f"{host} is rate-limiting requests (429 {reason}){said}"
        if status >= 500:
            return f"{host} failed ({status} {reason}){said}"
        return f"{host} rejected the request ({status} {reason}){said}"


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"
