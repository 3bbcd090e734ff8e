"""The HTTP side of `r1chat serve`: OpenAI's routes on Starlette.

    GET  /v1/models             the installed models
    POST /v1/chat/completions   a chat reply (SSE with `stream: true`)
    POST /v1/completions        a raw prompt continued (the remote backend's continuation)
    GET  /health                up, and which model is resident

A reply's job goes to the model process (`serve.worker`); its response watches the
connection, so a client that goes away cancels its generation at once.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from r1chat.config.settings import Settings
from r1chat.core.events import Done
from r1chat.serve.door import Door, FrontDoor, TooLarge
from r1chat.serve.fields import BadRequest
from r1chat.serve.items import Accepted, Failed, Rendered
from r1chat.serve.names import Names
from r1chat.serve.ollama import error_body
from r1chat.serve.ollama_routes import OllamaSide, ollama_routes
from r1chat.serve.replies import Reply, usage
from r1chat.serve.requests import Call, parse_chat, parse_completion
from r1chat.serve.worker import Job, Models

Log = Callable[[str], None]
PACE_S = 0.01
KEEP_ALIVE_S = 3.0
"""How often a stream waiting for a free slot gets a comment (SSE's keep-alive)."""
"""A stream writes at most this often (its first text at once): at thousands of tokens a
second, a write per token would take the time the model thread needs."""


def create_app(
    models: Models,
    names: Names,
    settings: Settings,
    *,
    api_key: str | None,
    door: Door,
    log: Log,
) -> ASGIApp:
    """The routes behind the front door (`serve.door`)."""
    key = api_key.encode() if api_key is not None else None

    def authorize(request: Request) -> None:
        if key is None:
            return
        given = request.headers.get("authorization", "").encode("latin-1")  # the bytes sent
        scheme, _, token = given.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), key):
            raise BadRequest(
                "a valid API key is needed (Authorization: Bearer KEY)",
                status=401,
                code="invalid_api_key",
            )

    def model_object(name: str) -> dict[str, Any]:
        n_ctx = models.context()
        return {
            "id": name,
            "object": "model",
            "created": 0,
            "owned_by": "r1chat",
            "context_length": n_ctx,  # oterm, aider and LM Studio's clients read these
            "max_model_len": n_ctx,
        }

    async def list_models(request: Request) -> Response:
        authorize(request)
        return JSONResponse({"object": "list", "data": [model_object(n) for n in names.listed()]})

    async def one_model(request: Request) -> Response:
        authorize(request)
        name = names.resolve(request.path_params["name"])
        return JSONResponse(model_object(name))

    async def health(request: Request) -> Response:
        running, waiting = models.counts()
        body = {"status": "ok", "model": models.resident, "running": running, "waiting": waiting}
        return JSONResponse(body)

    def submit(
        request: Request, call: Call, make: Callable[[Call, str, Callable[[], None]], Reply]
    ) -> Job:
        model = names.resolve(call.model)
        job = Job(call, model, f"{request.method} {request.url.path}", asyncio.get_running_loop())
        job.reply = make(call, model, job.cancel)
        return job

    def respond(job: Job) -> Response:
        models.submit(job)
        return JobResponse(job, job.reply, log)

    async def reply(request: Request, parse: Callable[[Any, Settings], Call]) -> Response:
        authorize(request)
        call = parse(await _json(request), settings)
        return respond(submit(request, call, Reply))

    async def chat(request: Request) -> Response:
        return await reply(request, parse_chat)

    async def complete(request: Request) -> Response:
        return await reply(request, parse_completion)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BadRequest)
        log(f"{request.method} {request.url.path} {exc.status} · {exc.message}")
        ollama = request.url.path.startswith("/api/")  # Ollama's error shape
        body = error_body(exc) if ollama else exc.body()
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        what = "no such route" if exc.status_code == 404 else str(exc.detail).lower()
        error = BadRequest(f"{what}: {request.method} {request.url.path}", status=exc.status_code)
        return await refused(request, error)

    app = Starlette(
        routes=[
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/models/{name:path}", one_model, methods=["GET"]),
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/completions", complete, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            *ollama_routes(OllamaSide(models, names, settings, authorize, submit, respond, _json)),
        ],
        exception_handlers={BadRequest: refused, HTTPException: http_error},
    )
    return FrontDoor(app, door, log)


async def _json(request: Request) -> Any:
    """The body as JSON: valid, not absurdly nested, no text that is not Unicode."""
    try:
        raw = await request.body()
    except TooLarge as e:
        raise BadRequest(str(e), status=413, code="request_too_large") from None
    except ClientDisconnect:
        raise BadRequest("the client went away while it sent the request", status=499) from None
    try:
        body = json.loads(raw)
    except RecursionError:
        raise BadRequest("the request body is nested too deeply to be a request") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(f"the request body is not valid JSON ({e})") from None
    if (where := _lone_surrogate(body, "")) is not None:
        raise BadRequest(
            f"{where or 'the body'} is not valid Unicode text (a lone surrogate such as \\ud800)",
            where or None,
        )
    return body


def _lone_surrogate(value: Any, where: str) -> str | None:
    """Where in a parsed body a string holds half of a surrogate pair (which no UTF-8
    tokenizer can take), as `messages[0].content`."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            found = _lone_surrogate(k, where) or _lone_surrogate(v, _at(where, k))
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if (found := _lone_surrogate(v, f"{where}[{i}]")) is not None:
                return found
    return None


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


class JobResponse(Response):
    """Streams a job's reply as server-sent events, or sends it whole when it is done;
    either way the connection is watched, and its end cancels the job."""

    def __init__(self, job: Job, reply: Reply, log: Log) -> None:
        self.job, self.reply, self.log = job, reply, log
        self.start = time.monotonic()
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watcher = asyncio.ensure_future(self._watch(receive))
        try:
            if self.job.call.stream:
                await self._stream(scope, receive, send)
            else:
                await self._whole(scope, receive, send)
        except OSError:  # the connection broke while we wrote
            self._gone()
        finally:
            watcher.cancel()
            self.job.cancel()  # a no-op once the reply is over

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self._gone()

    def _gone(self) -> None:
        """The worker says how far the reply got, once it has stopped."""
        self.job.client_gone = True
        self.job.cancel()

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The events, once the model process has accepted the request (its prompt fits):
        a refusal before that is an HTTP error, not a stream."""
        early: list[Any] = []
        while not any(isinstance(i, (Accepted, Failed)) for i in early):
            early += await self.job.items()
        refusal = next(i for i in early if isinstance(i, (Accepted, Failed)))
        reply = self.reply
        if isinstance(refusal, Failed):
            e = refusal.error
            self._logged(e.status, e.message)
            response = JSONResponse(reply.error(e), status_code=e.status, headers=e.headers)
            return await response(scope, receive, send)
        headers = [(b"content-type", reply.media_type.encode()), *_STREAM_HEADERS]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        out = [reply.frame(c) for c in reply.first()]
        batches = [early]
        while True:
            for item in batches.pop() if batches else await self._items(send):
                if isinstance(item, Failed):
                    out += [reply.frame(reply.error(item.error)), reply.end]
                    self._logged(item.error.status, item.error.message)
                    return await _body(send, out, more=False)
                if isinstance(item, Done):
                    if (error := self._failure(item)) is not None:
                        out.append(reply.frame(reply.error(error)))
                        self._logged(error.status, error.message)
                    else:
                        out += [reply.frame(c) for c in reply.last(item)]
                        self._logged(200, done=item)
                    out.append(reply.end)
                    return await _body(send, out, more=False)
                if not isinstance(item, (Rendered, Accepted)):  # (a dry run is never streamed)
                    out.append(reply.encode(reply.feed(item)))
            if out:
                await _body(send, out, more=True)
                out = []
                await asyncio.sleep(PACE_S)  # let tokens gather: a write per token is slow

    async def _items(self, send: Send) -> list[Any]:
        """The job's next items; while it waits for a free slot, a keep-alive comment
        every `KEEP_ALIVE_S` (SSE only), so that clients and proxies do not give up."""
        waiting = asyncio.ensure_future(self.job.items())
        while True:
            done, _ = await asyncio.wait({waiting}, timeout=KEEP_ALIVE_S)
            if done:
                return waiting.result()
            if not self.job.started and self.reply.waiting:
                await _body(send, [self.reply.waiting], more=True)

    async def _whole(self, scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            for item in await self.job.items():
                if isinstance(item, Failed):
                    e = item.error
                    self._logged(e.status, e.message)
                    body = self.reply.error(e)
                    response = JSONResponse(body, status_code=e.status, headers=e.headers)
                    return await response(scope, receive, send)
                if isinstance(item, Rendered):
                    self._logged(200, "dry run")
                    body = {
                        "object": "r1chat.prompt",
                        "model": self.job.model,
                        "prompt": item.text,
                        "tokens": list(item.tokens),
                    }
                    return await JSONResponse(body)(scope, receive, send)
                if isinstance(item, Done):
                    if (error := self._failure(item)) is not None:
                        self._logged(error.status, error.message)
                        body = self.reply.error(error)
                        response = JSONResponse(body, status_code=error.status)
                    else:
                        self._logged(200, done=item)
                        response = JSONResponse(self.reply.whole(item))
                    return await response(scope, receive, send)
                if not isinstance(item, Rendered):
                    self.reply.feed(item)

    def _failure(self, done: Done) -> BadRequest | None:
        """The error to answer with for a reply that broke off (not by a stop string)."""
        if self.reply.stopped or done.finish_reason not in ("error", "cancelled"):
            return None
        if done.finish_reason == "cancelled":
            return BadRequest("the server is shutting down", status=503, kind="server_error")
        why = self.reply.notices[-1] if self.reply.notices else "the reply failed"
        return BadRequest(why, status=500, kind="server_error")

    def _logged(self, status: int, why: str = "", done: Done | None = None) -> None:
        if self.job.client_gone:
            return
        seconds = time.monotonic() - self.start
        line = f"{self.job.what} {status} · {self.job.model}"
        if done is not None:
            u = usage(done)
            line += f" · {u['prompt_tokens']:,} prompt + {u['completion_tokens']:,} tokens"
        elif why:
            line += f" · {why}"
        self.log(f"{line} · {seconds:.1f} s")


_STREAM_HEADERS = [
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


async def _body(send: Send, parts: list[bytes], *, more: bool) -> None:
    await send({"type": "http.response.body", "body": b"".join(parts), "more_body": more})
