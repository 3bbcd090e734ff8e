"""Ollama's routes on `r1chat serve`'s port (its `docs/api.md`; `/api/version` says which):

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
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from r1chat.core.errors import R1ChatError, UnknownModel
from r1chat.serve.body import read_json
from r1chat.serve.dialects import ollama
from r1chat.serve.dialects.base import json_line
from r1chat.serve.errors import ApiError, quoted
from r1chat.serve.fields import body_object
from r1chat.serve.names import Names, ollama_name
from r1chat.serve.server import Server

if TYPE_CHECKING:
    from r1chat.models.catalog import Entry

_UNSUPPORTED = ("embed", "embeddings", "create", "push", "copy", "blobs/{digest}")


def ollama_routes(server: Server) -> list[Route]:
    dispatcher, names = server.dispatcher, server.names

    async def running(request: Request) -> Response:
        return PlainTextResponse("Ollama is running")

    async def version(request: Request) -> Response:
        from r1chat import __version__

        return JSONResponse({"version": ollama.VERSION, "r1chat": __version__})

    async def tags(request: Request) -> Response:
        server.authorize(request)
        return JSONResponse({"models": [_model(names, n) for n in names.listed()]})

    async def ps(request: Request) -> Response:
        server.authorize(request)
        resident = dispatcher.resident
        if resident is None:
            return JSONResponse({"models": []})
        entry = _model(names, resident)
        expires, info = dispatcher.expires_at, dispatcher.info
        entry.update(
            expires_at=_iso(expires) if expires is not None else "9999-12-31T23:59:59Z",
            size_vram=entry["size"] if info is not None and info.gpu_layers else 0,
            context_length=dispatcher.context(),
        )
        return JSONResponse({"models": [entry]})

    async def show(request: Request) -> Response:
        server.authorize(request)
        body = await _body(request)
        name = names.resolve(_name(body))
        facts = _facts(names, name)
        arch = facts.get("architecture") or "llama"
        # the context a reply has (the served one for the loaded model), not its trained one
        context = dispatcher.context() if name == dispatcher.resident else None
        # every model calls tools here (in its own markers, or held to a JSON call by
        # grammar); those in R1's format reason
        capabilities = ["completion", "tools"]
        if str(facts.get("prompt_format", "")).startswith("R1"):
            capabilities.append("thinking")
        return JSONResponse(
            {
                "modelfile": "",
                "parameters": "",
                "template": "",
                "details": _details(facts),
                "model_info": {
                    "general.architecture": arch,
                    f"{arch}.context_length": context
                    or facts.get("context")
                    or dispatcher.context(),
                    f"{arch}.block_count": facts.get("layers"),
                },
                "capabilities": capabilities,
                "modified_at": _model(names, name)["modified_at"],
            }
        )

    async def chat(request: Request) -> Response:
        return await server.reply(request, ollama.CHAT)

    async def generate(request: Request) -> Response:
        server.authorize(request)
        body = await _body(request)
        if not body.get("prompt"):  # load or unload the model
            return await _load_or_unload(body)
        return await server.reply(request, ollama.GENERATE, body)

    async def _load_or_unload(body: dict[str, Any]) -> Response:
        name = names.resolve(_name(body))
        alive = ollama.keep_alive(body.get("keep_alive"))
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if alive == 0:
            dispatcher.idle_for(0)
            reason = "unload"
        else:
            try:
                await asyncio.to_thread(dispatcher.load, name)
            except R1ChatError as e:
                raise ApiError(str(e), "model", status=500, kind="server_error") from None
            dispatcher.idle_for(dispatcher.keep_alive if alive is None else alive)
            reason = "load"
        return JSONResponse(
            {"model": name, "created_at": now, "response": "", "done": True, "done_reason": reason}
        )

    async def delete(request: Request) -> Response:
        server.authorize(request)
        name = names.resolve(_name(await _body(request)))
        if name == names.default or name == dispatcher.resident:
            raise ApiError(f"{name} is the model this server runs; it is not deleted", "model")
        from r1chat.models import store

        try:
            store.remove_model(name)
        except R1ChatError as e:
            raise ApiError(str(e), "model") from None
        return Response(status_code=200)

    async def pull(request: Request) -> Response:
        server.authorize(request)
        body = await _body(request)
        name = _name(body)
        stream = body.get("stream", True)
        if not isinstance(stream, bool):
            raise ApiError("stream must be true or false", "stream")
        entry = await asyncio.to_thread(_to_pull, name)
        pulling = _pulling(entry, lambda line: server.log(f"POST /api/pull {line}"))
        if stream:
            return StreamingResponse(pulling, media_type="application/x-ndjson")
        last: dict[str, Any] = {}
        async for line in pulling:
            last = json.loads(line)
        return JSONResponse(last, status_code=500 if "error" in last else 200)  # (logged)

    async def unsupported(request: Request) -> Response:
        what = request.url.path
        raise ApiError(f"{what} is not supported by r1chat serve (R1 models chat)", status=501)

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


async def _body(request: Request) -> dict[str, Any]:
    return body_object(await read_json(request))


def _name(body: dict[str, Any]) -> str:
    """The model a body names (Ollama's `model`, or its older `name`)."""
    name = body.get("model", body.get("name"))
    if not isinstance(name, str) or not name.strip():
        raise ApiError("model must be a model name (see GET /api/tags)", "model")
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


MOST_NAME = 256
"""The longest name `/api/pull` takes (a Hub repo and file name fit in it)."""


def _to_pull(name: str) -> Entry:
    """What `/api/pull` of `name` (Ollama's names for the distills included) fetches; an
    unknown name is Ollama's 404, anything else that stops it a 400 or 500."""
    from r1chat.core.request import DEFAULT_CTX
    from r1chat.models import hub_repos
    from r1chat.models.catalog import load_catalog

    if len(name) > MOST_NAME:
        raise ApiError(f"model {quoted(name)}: longer than any model name", "model")
    try:
        entry, _ = hub_repos.entry_to_pull(ollama_name(name), load_catalog, DEFAULT_CTX)
    except UnknownModel as e:
        raise ApiError(f"pull model manifest: {e}", "model", status=404) from None
    except R1ChatError as e:
        raise ApiError(f"pull of {quoted(name)} failed: {e}", "model", status=500) from None
    if entry.remote:
        raise ApiError(f"{entry.name} is too big to download and run here", "model")
    return entry


async def _pulling(entry: Entry, log: Callable[[str], None]) -> AsyncIterator[bytes]:
    """The model manager's pull of `entry`, on a thread, as Ollama's progress objects
    ({status, digest, total, completed}; `{"status": "success"}` last, or `{"error":
    ...}`); how it ended goes to `log`."""
    from r1chat.models import download

    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    cancel = threading.Event()

    def put(obj: dict[str, Any] | None) -> None:
        loop.call_soon_threadsafe(lines.put_nowait, obj)

    def run() -> None:
        try:
            put({"status": "pulling manifest"})

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
            put({"error": f"pull of {entry.name} failed: {e}"})
        finally:
            put(None)

    threading.Thread(target=run, name="r1chat-pull", daemon=True).start()
    last: dict[str, Any] = {}
    try:
        while (obj := await lines.get()) is not None:
            last = obj
            yield json_line(obj)
    finally:
        cancel.set()  # the client went away: stop (the partial file stays)
        if "error" in last:
            log(f"500 · {entry.name}: {last['error']}")
        elif last.get("status") == "success":
            log(f"200 · pulled {entry.name}")
        else:
            log(f"499 · {entry.name}: the client left; the partial file is kept")
