"""A reply on the wire: `ReplyResponse` streams a ticket's items in its dialect's frames, or
sends the reply whole, watching the connection; `api_error` is the one place where a
failure the model host reports becomes an HTTP status."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from r1chat.core.events import Done
from r1chat.host.outcomes import Accepted, Failed, Rendered, Why
from r1chat.serve.call import Call
from r1chat.serve.dialects.base import Dialect, Writer
from r1chat.serve.dispatch import Ticket, serve_log
from r1chat.serve.errors import ApiError
from r1chat.serve.reply import ReplyState

Log = Callable[[str], None]
PACE_S = 0.01
"""A stream writes at most this often (its first text at once): at thousands of tokens a
second, a write per token would take the time the model thread needs."""
KEEP_ALIVE_S = 3.0
"""How often a stream waiting for a free slot gets a comment (SSE's keep-alive)."""


def api_error(failed: Failed, call: Call) -> ApiError:
    """What the model host reported about a reply it could not give, as an HTTP error."""
    message = failed.message
    match failed.why:
        case Why.TOO_LONG:
            if not failed.tokens:  # (where the size is known, the message says what fits)
                message = (
                    f"{message.split('; ')[0]} (start the server with a larger --ctx, or send less)"
                )
            return ApiError(message, "messages", code="context_length_exceeded")
        case Why.BAD_SCHEMA:
            tools = call.request.tools is not None and call.request.tools.callable
            return ApiError(message, "tools" if tools else "response_format")
        case Why.CANCELLED:
            return ApiError(message, status=499)
        case Why.CRASHED:
            return ApiError(
                f"the model process {failed.cause} during this reply (a crash inside "
                f"llama.cpp?); the server goes on and loads the model again; see {serve_log()}",
                status=500,
                kind="server_error",
            )
        case Why.LOAD:
            return ApiError(message, "model", status=500, kind="server_error")
    return ApiError(message, status=500, kind="server_error")


class ReplyResponse(Response):
    """Streams a ticket's reply in its dialect's frames, or sends it whole when it is done;
    either way the connection is watched, and its end cancels the ticket."""

    def __init__(
        self, ticket: Ticket, state: ReplyState, writer: Writer, dialect: Dialect, log: Log
    ) -> None:
        self.ticket, self.state, self.writer, self.dialect, self.log = (
            ticket,
            state,
            writer,
            dialect,
            log,
        )
        self.start = time.monotonic()
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watcher = asyncio.ensure_future(self._watch(receive))
        try:
            if self.ticket.call.stream:
                await self._stream(scope, receive, send)
            else:
                await self._whole(scope, receive, send)
        except OSError:  # the connection broke while we wrote
            self._gone()
        finally:
            watcher.cancel()
            self.ticket.cancel()  # a no-op once the reply is over

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self._gone()

    def _gone(self) -> None:
        """The dispatcher says how far the reply got, once it has stopped."""
        self.ticket.client_gone = True
        self.ticket.cancel()

    def _error_response(self, error: ApiError) -> Response:
        self._logged(error.status, error.log)
        body = self.dialect.error_body(error)
        return JSONResponse(body, status_code=error.status, headers=error.headers)

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The events, once the model host has accepted the request (its prompt fits): a
        refusal before that is an HTTP error, not a stream."""
        early: list[Any] = []
        while not any(isinstance(i, (Accepted, Failed)) for i in early):
            early += await self.ticket.items()
        refusal = next(i for i in early if isinstance(i, (Accepted, Failed)))
        writer, state = self.writer, self.state
        if isinstance(refusal, Failed):
            response = self._error_response(api_error(refusal, self.ticket.call))
            return await response(scope, receive, send)
        headers = [(b"content-type", writer.media_type.encode()), *_STREAM_HEADERS]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        out = [writer.opening()]
        batches = [early]
        while True:
            for item in batches.pop() if batches else await self._items(send):
                if isinstance(item, Failed):
                    failed = api_error(item, self.ticket.call)
                    self._logged(failed.status, failed.log)
                    return await _body(send, [*out, writer.failure(failed)], more=False)
                if isinstance(item, Done):
                    if (error := self._failure(item)) is not None:
                        out.append(writer.failure(error))
                        self._logged(error.status, error.message)
                    else:
                        out.append(writer.closing(item))
                        self._logged(200, done=item)
                    return await _body(send, out, more=False)
                if pieces := state.feed(item):
                    out.append(writer.pieces(pieces))
            if out:
                await _body(send, out, more=True)
                out = []
                await asyncio.sleep(PACE_S)  # let tokens gather: a write per token is slow

    async def _items(self, send: Send) -> list[Any]:
        """The ticket's next items; while it waits for a free slot, a keep-alive frame
        every `KEEP_ALIVE_S` (where the dialect has one), so that clients and proxies do
        not give up."""
        waiting = asyncio.ensure_future(self.ticket.items())
        while True:
            done, _ = await asyncio.wait({waiting}, timeout=KEEP_ALIVE_S)
            if done:
                return waiting.result()
            if not self.ticket.started and self.writer.waiting:
                await _body(send, [self.writer.waiting], more=True)

    async def _whole(self, scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            for item in await self.ticket.items():
                if isinstance(item, Failed):
                    response = self._error_response(api_error(item, self.ticket.call))
                    return await response(scope, receive, send)
                if isinstance(item, Rendered):
                    self._logged(200, "dry run")
                    return await JSONResponse(self.writer.rendered(item))(scope, receive, send)
                if isinstance(item, Done):
                    if (error := self._failure(item)) is not None:
                        response = self._error_response(error)
                    else:
                        self._logged(200, done=item)
                        response = JSONResponse(self.writer.whole(item))
                    return await response(scope, receive, send)
                self.state.feed(item)

    def _failure(self, done: Done) -> ApiError | None:
        """The error to answer with for a reply that broke off (not by a stop string)."""
        if self.state.stopped or done.finish_reason not in ("error", "cancelled"):
            return None
        if done.finish_reason == "cancelled":
            return ApiError("the server is shutting down", status=503, kind="server_error")
        why = self.state.notices[-1] if self.state.notices else "the reply failed"
        return ApiError(why, status=500, kind="server_error")

    def _logged(self, status: int, why: str = "", done: Done | None = None) -> None:
        if self.ticket.client_gone:
            return
        seconds = time.monotonic() - self.start
        line = f"{self.ticket.what} {status} · {self.ticket.model}"
        if done is not None:
            s = done.stats
            tokens = s.thinking_tokens + s.answer_tokens
            line += f" · {s.prompt_tokens:,} prompt + {tokens:,} tokens"
        elif why:
            line += f" · {why}"
        self.log(f"{line} · {seconds:.1f} s")


_STREAM_HEADERS = [
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


async def _body(send: Send, parts: list[bytes], *, more: bool) -> None:
    await send({"type": "http.response.body", "body": b"".join(parts), "more_body": more})
