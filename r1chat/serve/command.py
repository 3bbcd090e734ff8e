"""`r1chat serve`: the installed models as an OpenAI-compatible API on a local port.

The model loads before the first request; then one line says where the API is, and a
line per request follows (unless `--quiet`). Starlette and uvicorn are imported inside
`run`, so the other commands never pay for them.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from r1chat.config.options import add_model_options, add_reasoning_options, add_sampling_options
from r1chat.core.errors import R1ChatError, UsageError

if TYPE_CHECKING:
    from r1chat.config.settings import Settings
    from r1chat.serve.worker import Models

DEFAULT_PORT = 11435
"""Ollama's port plus one: both can run side by side."""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="serve the installed models as an OpenAI-compatible API",
        description="Serve the installed models over HTTP as an OpenAI-compatible API "
        "(/v1/chat/completions, /v1/completions, /v1/models): reasoning in "
        "reasoning_content, the answer in content. One reply at a time; others queue. "
        "The options below are the defaults a request's own fields override.",
    )
    g = p.add_argument_group("server")
    g.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    g.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port to listen on ({DEFAULT_PORT}; 0: any free port)")  # fmt: skip
    g.add_argument(
        "--api-key-env",
        dest="serve_key_env",
        metavar="NAME",
        help="require the API key held in environment variable NAME (Authorization: Bearer)",
    )
    g.add_argument("--queue", type=int, default=16, metavar="N",
                   help="requests that may wait for the model (16); more get 429")  # fmt: skip
    g.add_argument("--quiet", action="store_true", help="no line per request")
    add_model_options(p, remote=False)
    add_sampling_options(p)
    add_reasoning_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from r1chat.config.file import Config
    from r1chat.config.settings import resolve
    from r1chat.models.store import default_model

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be from 0 to 65535, not {args.port}")
    if args.queue < 1:
        raise UsageError(f"--queue must be at least 1, not {args.queue}")
    api_key = _api_key(args.serve_key_env)
    config = Config.load()
    settings = resolve(config, vars(args))
    spec = settings.model or default_model(config)
    sock = _bind(args.host, args.port)
    try:
        return _serve(args, settings, spec, sock, api_key)
    finally:
        sock.close()


def _serve(
    args: argparse.Namespace,
    settings: Settings,
    spec: str,
    sock: socket.socket,
    api_key: str | None,
) -> int:
    import uvicorn

    from r1chat.serve.app import create_app
    from r1chat.serve.names import Names
    from r1chat.serve.worker import Models

    names = Names(_model_id(spec), spec)
    log = (lambda line: None) if args.quiet else say
    models = Models(settings, names.spec_for, max_queue=args.queue, log=log)
    info = models.load(names.default)  # a model that cannot load ends here, in one line
    host, port = sock.getsockname()[:2]
    where = f"[{host}]" if ":" in host else host
    say(f"r1chat serve: http://{where}:{port}/v1 · {names.default} · {info.offload} · "
        f"ctx {info.n_ctx:,} · Ctrl-C stops")  # fmt: skip
    if api_key is None and not _loopback(args.host):
        say(f"warning: listening on {args.host} without an API key: anyone who can reach "
            "this port can use the model (see --api-key-env)")  # fmt: skip
    app = create_app(models, names, settings, api_key=api_key, log=log)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=5
    )
    server = _server(config, models)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn raises the Ctrl-C again once it has stopped
        pass
    finally:
        models.stop()
    say("r1chat serve: stopped")
    return 0


def say(line: str) -> None:
    print(line, flush=True)


def _model_id(spec: str) -> str:
    """The name clients use for the model the server started with: its catalog or
    imported name (`hf.co/Owner/Repo:Q4_K_M` as `owner/repo:q4_k_m`), or a file's name
    without `.gguf`."""
    from r1chat.models.catalog import load_catalog

    path = Path(spec).expanduser()
    if path.is_file() or spec.lower().endswith(".gguf"):
        return path.name[: -len(".gguf")] if path.suffix.lower() == ".gguf" else path.name
    entry = load_catalog().get(spec)
    return entry.name if entry is not None else spec.strip().lower()


def _api_key(env: str | None) -> str | None:
    if env is None:
        return None
    key = os.environ.get(env, "").strip()
    if not key:
        raise UsageError(f"--api-key-env {env}: that environment variable is not set")
    return key


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, or one line saying why not (taken, not an address here)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise UsageError(f"--host {host}: {e.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise R1ChatError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    return sock


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _server(config: Any, models: Models) -> Any:
    """uvicorn's server, whose Ctrl-C also cancels the replies in progress and queued, so
    it stops at once instead of waiting for them."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            models.cancel_all()
            super().handle_exit(sig, frame)

    return Server(config)
