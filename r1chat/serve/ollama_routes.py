"""Ollama's routes on `r1chat serve`'s port (Ollama 0.12's `docs/api.md`):

    GET|HEAD /                  "Ollama is running" (clients probe it)
    GET  /api/version           the Ollama API version followed
    GET  /api/tags              the installed models
    GET  /api/ps                the loaded model, and when it is unloaded
    POST /api/show              a model's details, context length and capabilities
    POST /api/chat              a chat reply (NDJSON stream unless `stream: false`)
    POST /api/generate          a reply to a prompt; an empty prompt loads (or, with
                                `keep_alive: 0`, unloads) the model
    POST /api/pull              the model manager's pull, as Ollama's progress objects
    DELETE /api/delete          remove an installed model

Other Ollama routes (embeddings, create, push, copy, blobs) answer 501 in Ollama's
error shape, saying so.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from r1chat.config.settings import Settings
from r1chat.core.errors import R1ChatError
from r1chat.serve.fields import BadRequest
from r1chat.serve.names import Names
from r1chat.serve.ollama import (
    VERSION,
    OllamaReply,
    keep_alive,
    parse_chat_body,
    parse_generate_body,
)
from r1chat.serve.replies import json_line
from r1chat.serve.requests import Call
from r1chat.serve.worker import Job, Models

_UNSUPPORTED = ("embed", "embeddings", "create", "push", "copy", "blobs/{digest}")


@dataclass(frozen=True)
class OllamaSide:
    """What the Ollama routes share with the OpenAI ones (`serve.app`)."""

    models: Models
    names: Names
    settings: Settings
    authorize: Callable[[Request], None]
    submit: Callable[[Request, Call, Any], Job]
    respond: Callable[[Job], Response]
    read_json: Callable[[Request], Awaitable[Any]]


def ollama_routes(side: OllamaSide) -> list[Route]:
    models, names = side.models, side.names

    async def running(request: Request) -> Response:
        return PlainTextResponse("Ollama is running")

    async def version(request: Request) -> Response:
        from r1chat import __version__

        return JSONResponse({"version": VERSION, "r1chat": __version__})

    async def tags(request: Request) -> Response:
        side.authorize(request)
        return JSONResponse({"models": [_model(names, n) for n in names.listed()]})

    async def ps(request: Request) -> Response:
        side.authorize(request)
        resident = models.resident
        if resident is None:
            return JSONResponse({"models": []})
        entry = _model(names, resident)
        expires = models.expires_at
        entry.update(
            expires_at=_iso(expires) if expires is not None else "9999-12-31T23:59:59Z",
            size_vram=0 if models.info is None or not models.info.gpu_layers else entry["size"],
            context_length=models.context(),
        )
        return JSONResponse({"models": [entry]})

    async def show(request: Request) -> Response:
        side.authorize(request)
        body = await _body(side, request)
        name = names.resolve(_name(body))
        facts = _facts(names, name)
        arch = facts.get("architecture") or "llama"
        return JSONResponse(
            {
                "modelfile": "",
                "parameters": "",
                "template": "",
                "details": _details(facts),
                "model_info": {
                    "general.architecture": arch,
                    f"{arch}.context_length": facts.get("context") or models.context(),
                    f"{arch}.block_count": facts.get("layers"),
                },
                "capabilities": ["completion", "thinking"],
                "modified_at": _model(names, name)["modified_at"],
            }
        )

    async def chat(request: Request) -> Response:
        side.authorize(request)
        call, alive = parse_chat_body(await _body(side, request), side.settings, models.context())
        return _reply(request, call, alive, chat=True)

    async def generate(request: Request) -> Response:
        side.authorize(request)
        body = await _body(side, request)
        if not body.get("prompt"):  # load or unload the model
            return await _load_or_unload(body)
        call, alive = parse_generate_body(body, side.settings, models.context())
        return _reply(request, call, alive, chat=False)

    def _reply(request: Request, call: Call, alive: float | None, *, chat: bool) -> Response:
        job = side.submit(request, call, lambda c, m, stop: OllamaReply(c, m, stop, chat=chat))
        job.keep_alive = alive
        return side.respond(job)

    async def _load_or_unload(body: dict[str, Any]) -> Response:
        name = names.resolve(_name(body))
        alive = keep_alive(body.get("keep_alive"))
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if alive == 0:
            models.idle_for(0)
            reason = "unload"
        else:
            try:
                await asyncio.to_thread(models.load, name)
            except R1ChatError as e:
                raise BadRequest(str(e), "model", status=500, kind="server_error") from None
            models.idle_for(models.keep_alive if alive is None else alive)
            reason = "load"
        return JSONResponse(
            {"model": name, "created_at": now, "response": "", "done": True, "done_reason": reason}
        )

    async def delete(request: Request) -> Response:
        side.authorize(request)
        name = names.resolve(_name(await _body(side, request)))
        if name == names.default or name == models.resident:
            raise BadRequest(f"{name} is the model this server runs; it is not deleted", "model")
        from r1chat.models import store

        try:
            store.remove_model(name)
        except R1ChatError as e:
            raise BadRequest(str(e), "model") from None
        return Response(status_code=200)

    async def pull(request: Request) -> Response:
        side.authorize(request)
        body = await _body(side, request)
        name = _name(body)
        stream = body.get("stream", True)
        if not isinstance(stream, bool):
            raise BadRequest("stream must be true or false", "stream")
        if stream:
            return StreamingResponse(_pulling(name), media_type="application/x-ndjson")
        last: dict[str, Any] = {}
        async for line in _pulling(name):
            last = json.loads(line)
        status = 500 if "error" in last else 200
        return JSONResponse(last, status_code=status)

    async def unsupported(request: Request) -> Response:
        what = request.url.path
        raise BadRequest(f"{what} is not supported by r1chat serve (R1 models chat)", status=501)

    return [
        Route("/", running, methods=["GET", "HEAD"]),
        Route("/api/version", version, methods=["GET"]),
        Route("/api/tags", tags, methods=["GET"]),
        Route("/api/ps", ps, methods=["GET"]),
        Route("/api/show", show, methods=["POST"]),
        Route("/api/chat", chat, methods=["POST"]),
        Route("/api/generate", generate, methods=["POST"]),
        Route("/api/pull", pull, methods=["POST"]),
        Route("/api/delete", delete, methods=["DELETE"]),
        *(Route(f"/api/{path}", unsupported, methods=["GET", "POST"]) for path in _UNSUPPORTED),
    ]


async def _body(side: OllamaSide, request: Request) -> dict[str, Any]:
    body = await side.read_json(request)
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _name(body: dict[str, Any]) -> str:
    """The model a body names (Ollama's `model`, or its older `name`)."""
    name = body.get("model", body.get("name"))
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("model must be a model name (see GET /api/tags)", "model")
    return name.strip()


def _facts(names: Names, name: str) -> dict[str, Any]:
    """What the GGUF header says (nothing for a model that cannot be read)."""
    from r1chat.models import store

    try:
        return store.describe_path(store.resolve_model(names.spec_for(name)))
    except (R1ChatError, OSError):
        return {}


def _model(names: Names, name: str) -> dict[str, Any]:
    facts = _facts(names, name)
    path = Path(facts.get("path", ""))
    modified = path.stat().st_mtime if facts and path.exists() else time.time()
    return {
        "name": name,
        "model": name,
        "modified_at": _iso(modified),
        "size": int(facts.get("size") or 0),
        "digest": "",
        "details": _details(facts),
    }


def _details(facts: dict[str, Any]) -> dict[str, Any]:
    arch = facts.get("architecture") or ""
    return {
        "parent_model": "",
        "format": "gguf",
        "family": arch,
        "families": [arch] if arch else None,
        "parameter_size": "",
        "quantization_level": str(facts.get("file_type") or ""),
    }


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


async def _pulling(name: str) -> AsyncIterator[bytes]:
    """The model manager's pull, on a thread, as Ollama's progress objects ({status,
    digest, total, completed}; `{"status": "success"}` last, or `{"error": ...}`)."""
    from r1chat.core.request import DEFAULT_CTX
    from r1chat.models import download, hub_repos
    from r1chat.models.catalog import load_catalog

    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    cancel = threading.Event()

    def put(obj: dict[str, Any] | None) -> None:
        loop.call_soon_threadsafe(lines.put_nowait, obj)

    def run() -> None:
        try:
            put({"status": "pulling manifest"})
            entry, _ = hub_repos.entry_to_pull(name, load_catalog, DEFAULT_CTX)
            if entry.remote:
                raise R1ChatError(f"{entry.name} is too big to download and run here")

            def progress(p: Any) -> None:
                status = "verifying sha256 digest" if p.phase == "verify" else f"pulling {p.file}"
                put({"status": status, "digest": p.file, "total": p.total, "completed": p.done})

            download.pull(entry, progress=progress, cancel=cancel)
            put({"status": "success"})
        except download.PullCancelled:
            put({"error": "the pull was cancelled; the partial file is kept"})
        except R1ChatError as e:
            put({"error": str(e)})
        except Exception as e:  # a bug or an odd OS error: one line
            put({"error": f"pull of {name} failed: {e}"})
        finally:
            put(None)

    threading.Thread(target=run, name="r1chat-pull", daemon=True).start()
    try:
        while (obj := await lines.get()) is not None:
            yield json_line(obj)
    finally:
        cancel.set()  # the client went away: stop (the partial file stays)
