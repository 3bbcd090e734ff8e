"""The HTTP side of `r1chat serve`: the routes on Starlette, each API a dialect
(`serve.dialects`: a parser into the one `Call`, a writer from the one `ReplyState`).

    GET  /v1/models             the installed models
    POST /v1/chat/completions   a chat reply (SSE with `stream: true`)
    POST /v1/completions        a raw prompt continued (the remote backend's continuation)
    GET  /health                up, and which model is resident
    ... and Ollama's routes (`serve.ollama_routes`)

Every reply takes one path (`serve.server.Server.reply`): its dialect's parser, the
dispatcher and the model host (`serve.dispatch`), a response in its dialect's shape that
watches the connection, so a client that goes away cancels its generation at once
(`serve.responses`).
"""

from __future__ import annotations

import hmac
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from r1chat.config.settings import Settings
from r1chat.serve.dialects import anthropic, error_body_for, openai, responses_writer
from r1chat.serve.dialects.responses import Store
from r1chat.serve.dispatch import Dispatcher
from r1chat.serve.door import Door, FrontDoor
from r1chat.serve.errors import ApiError
from r1chat.serve.names import Names
from r1chat.serve.ollama_routes import ollama_routes
from r1chat.serve.responses import Log
from r1chat.serve.server import Server


def create_app(
    dispatcher: Dispatcher,
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
        """The API key, as OpenAI's clients send it (Authorization: Bearer) or Anthropic's
        (x-api-key)."""
        if key is None:
            return
        given = request.headers.get("authorization", "").encode("latin-1")  # the bytes sent
        scheme, _, token = given.partition(b" ")
        if scheme.lower() != b"bearer":
            token = request.headers.get("x-api-key", "").encode("latin-1")
        if not hmac.compare_digest(token.strip(), key):
            raise ApiError(
                "a valid API key is needed (Authorization: Bearer KEY, or x-api-key: KEY)",
                status=401,
                code="invalid_api_key",
            )

    server = Server(dispatcher, names, settings, authorize, log)
    store = Store()
    responses_api = responses_writer.dialect(store)

    def model_object(name: str) -> dict[str, Any]:
        n_ctx = dispatcher.context()
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
        return JSONResponse(model_object(names.resolve(request.path_params["name"])))

    async def health(request: Request) -> Response:
        running, waiting = dispatcher.counts()
        body = {
            "status": "ok",
            "model": dispatcher.resident,
            "running": running,
            "waiting": waiting,
        }
        return JSONResponse(body)

    async def chat(request: Request) -> Response:
        return await server.reply(request, openai.CHAT)

    async def complete(request: Request) -> Response:
        return await server.reply(request, openai.COMPLETIONS)

    async def responses(request: Request) -> Response:
        return await server.reply(request, responses_api)

    async def stored_response(request: Request) -> Response:
        authorize(request)
        response_id = request.path_params["id"]
        if request.method == "DELETE":
            store.delete(response_id)
            return JSONResponse({"id": response_id, "object": "response", "deleted": True})
        return JSONResponse(store.response(response_id))

    async def messages(request: Request) -> Response:
        return await server.reply(request, anthropic.MESSAGES)

    async def count_tokens(request: Request) -> Response:
        return await server.reply(request, anthropic.COUNT_TOKENS)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        log(f"{request.method} {request.url.path} {exc.status} · {exc.log}")
        body = error_body_for(request.url.path)(exc)
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        what = "no such route" if exc.status_code == 404 else str(exc.detail).lower()
        error = ApiError(f"{what}: {request.method} {request.url.path}", status=exc.status_code)
        return await refused(request, error)

    app = Starlette(
        routes=[
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/models/{name:path}", one_model, methods=["GET"]),
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/completions", complete, methods=["POST"]),
            Route("/v1/responses", responses, methods=["POST"]),
            Route("/v1/responses/{id}", stored_response, methods=["GET", "DELETE"]),
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            *ollama_routes(server),
        ],
        exception_handlers={ApiError: refused, HTTPException: http_error},
    )
    return FrontDoor(app, door, log)
