"""`r1chat serve`: the installed models as an OpenAI-compatible API on a local port.

The model loads before the first request; then one line says where the API is, and a
line per request follows (unless `--quiet`). Starlette and uvicorn are imported inside
`run`, so the other commands never pay for them.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import socket
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from r1chat.config.options import add_model_options, add_reasoning_options, add_sampling_options
from r1chat.core.errors import R1ChatError, UsageError
from r1chat.core.printable import one_line
from r1chat.core.units import duration
from r1chat.models.fit import MOST_SLOTS

if TYPE_CHECKING:
    from r1chat.config.schema import ServeValues
    from r1chat.config.settings import Settings
    from r1chat.serve.dispatch import Dispatcher

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 11435
"""Ollama's port plus one: both can run side by side."""
DEFAULT_QUEUE = 16
DEFAULT_KEEP_ALIVE = "5m"  # as Ollama
MAX_PARALLEL = 64


def register(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="serve the installed models over OpenAI's, Anthropic's and Ollama's APIs",
        description="Serve the installed models over HTTP, with OpenAI's APIs "
        "(/v1/chat/completions, /v1/completions, /v1/responses, /v1/models: reasoning in "
        "reasoning_content or reasoning items, the answer in content), Anthropic's "
        "(/v1/messages: reasoning in thinking blocks) and Ollama's (/api/chat, /api/generate, "
        "/api/tags...: reasoning in thinking). Several replies at once (--parallel); "
        "others queue. "
        "The options below are the defaults a request's own fields override.",
    )
    g = p.add_argument_group("server ([serve] in the config gives the defaults)")
    g.add_argument("--host", help=f"address to listen on ({DEFAULT_HOST})")
    g.add_argument("--port", type=int, help=f"port to listen on ({DEFAULT_PORT}; 0: any free port)")
    g.add_argument(
        "--api-key-env",
        dest="serve_key_env",
        metavar="NAME",
        help="require the API key held in environment variable NAME "
        "(Authorization: Bearer, or x-api-key)",
    )
    g.add_argument(
        "--parallel",
        type=int,
        metavar="N",
        help=f"replies at once, each with --ctx of context (default: as many as run as "
        f"well as one, at most {MOST_SLOTS})",
    )
    g.add_argument(
        "--queue",
        type=int,
        metavar="N",
        help=f"requests that may wait for the model ({DEFAULT_QUEUE}); more get 429",
    )
    g.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests addressed to host NAME (.example.com: its subdomains); "
        "IP addresses and localhost always are",
    )
    g.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let web pages from ORIGIN (https://app.example, or *) use the server; "
        "pages on this machine always may",
    )
    g.add_argument(
        "--keep-alive",
        metavar="DURATION",
        help=f"unload the model after it has been idle this long ({DEFAULT_KEEP_ALIVE}; "
        "30s, 1h, 0: after each reply, -1: never); it loads again on the next request",
    )
    g.add_argument("--quiet", action="store_true", help="no line per request")
    g.add_argument("--parent-fd", type=int, help=argparse.SUPPRESS)  # (`r1chat launch`'s)
    add_model_options(p, remote=False)
    add_sampling_options(p)
    add_reasoning_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from r1chat.config.file import Config

    if args.parent_fd is not None:  # started by `r1chat launch`: it ends with its parent
        from r1chat.core.lifeline import watch

        watch(args.parent_fd, lambda: os.kill(os.getpid(), signal.SIGINT))
    from r1chat.config.settings import resolve
    from r1chat.models.store import default_model

    config = Config.load()
    server = _options(args, config.values.serve)
    api_key = _api_key(args.serve_key_env)
    settings = resolve(config, vars(args))
    spec = settings.model or default_model(config)
    settings = replace(settings, sequences=_parallel(args, config.values.serve, spec, settings))
    from r1chat.launch.local import model_path
    from r1chat.models import inuse

    held = inuse.hold(model_path(spec))  # its model: `models rm` leaves it while this runs
    sock = _bind(server.host, server.port)
    try:
        return _serve(args, server, settings, spec, sock, api_key)
    finally:
        sock.close()
        if held is not None:
            held.close()


@dataclass(frozen=True, slots=True)
class _Server:
    host: str
    port: int
    queue: int
    allowed_hosts: tuple[str, ...]
    allowed_origins: tuple[str, ...]
    keep_alive: float  # seconds; negative: for good


def _parallel(args: argparse.Namespace, values: ServeValues, spec: str, settings: Settings) -> int:
    """`--parallel`, else `[serve] parallel`, else as many as fit (`slots_for`)."""
    from r1chat.launch.local import slots_for

    n = args.parallel if args.parallel is not None else values.parallel
    if n is None:
        return slots_for(spec, settings)
    if not 1 <= n <= MAX_PARALLEL:
        raise UsageError(f"--parallel must be from 1 to {MAX_PARALLEL}, not {n}")
    return int(n)


def _options(args: argparse.Namespace, values: ServeValues) -> _Server:
    """The command line over `[serve]` over the defaults (lists: both)."""
    port = args.port if args.port is not None else values.port
    queue = args.queue if args.queue is not None else values.queue
    alive = next(
        v for v in (args.keep_alive, values.keep_alive, DEFAULT_KEEP_ALIVE) if v is not None
    )
    keep_alive = duration(alive)
    if keep_alive is None:
        raise UsageError(f"--keep-alive must be a duration like 5m, 30s, 0 or -1, not {alive!r}")
    server = _Server(
        host=args.host or values.host or DEFAULT_HOST,
        port=DEFAULT_PORT if port is None else port,
        queue=queue or DEFAULT_QUEUE,
        allowed_hosts=(*values.allowed_hosts, *args.allow_host),
        allowed_origins=tuple(o.rstrip("/") for o in (*values.allowed_origins, *args.allow_origin)),
        keep_alive=keep_alive,
    )
    if not 0 <= server.port <= 65535:
        raise UsageError(f"--port must be from 0 to 65535, not {server.port}")
    if server.queue < 1:
        raise UsageError(f"--queue must be at least 1, not {server.queue}")
    return server


def _serve(
    args: argparse.Namespace,
    server: _Server,
    settings: Settings,
    spec: str,
    sock: socket.socket,
    api_key: str | None,
) -> int:
    import uvicorn

    from r1chat.core.request import input_limit
    from r1chat.launch.local import largest_context
    from r1chat.serve.app import create_app
    from r1chat.serve.dispatch import Dispatcher
    from r1chat.serve.door import Door
    from r1chat.serve.names import Names

    names = Names(model_id(spec), spec)
    log = (lambda line: None) if args.quiet else say
    dispatcher = Dispatcher(
        settings,
        names.spec_for,
        max_queue=server.queue,
        keep_alive=server.keep_alive,
        log=log,
        largest=largest_context,
    )
    info = dispatcher.load(names.default)  # a model that cannot load ends here, in one line
    dispatcher.idle_for(server.keep_alive)
    largest = max(info.n_ctx, largest_context(spec, settings))
    host, port = sock.getsockname()[:2]
    where = f"[{host}]" if ":" in host else host
    slots = settings.sequences
    grows = f" (up to {largest:,} for a longer prompt)" if largest > info.n_ctx else ""
    say(
        f"r1chat serve: http://{where}:{port}/v1 · {names.default} · {info.offload} · "
        f"{slots} slot{'s' if slots > 1 else ''} × {info.n_ctx:,} context{grows} · "
        f"{_kept(server.keep_alive)} · Ctrl-C stops"
    )
    if api_key is None and not _loopback(server.host):
        say(
            f"warning: listening on {server.host} without an API key: anyone who can reach "
            "this port can use the model (see --api-key-env)"
        )
    door = Door(server.host, server.allowed_hosts, server.allowed_origins, input_limit(largest))
    app = create_app(dispatcher, names, settings, api_key=api_key, door=door, log=log)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=5
    )
    uvicorn_server = _server(config, dispatcher)
    try:
        uvicorn_server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn raises the Ctrl-C again once it has stopped
        pass
    finally:
        dispatcher.stop()
    say("r1chat serve: stopped")
    return 0


def say(line: str) -> None:
    """One line of the server's log (what clients sent in it cannot steer the terminal)."""
    print(one_line(line), flush=True)


def model_id(spec: str) -> str:
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


def _server(config: Any, dispatcher: Dispatcher) -> Any:
    """uvicorn's server, whose Ctrl-C also cancels the replies in progress and queued, so
    it stops at once instead of waiting for them."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            dispatcher.cancel_all()
            super().handle_exit(sig, frame)

    return Server(config)


def _kept(seconds: float) -> str:
    """How long an idle model stays loaded, for the start line."""
    if seconds < 0:
        return "stays loaded"
    if seconds == 0:
        return "unloaded after each reply"
    if seconds % 60 == 0:
        return f"unloaded after {seconds / 60:g} min idle"
    return f"unloaded after {seconds:g} s idle"
