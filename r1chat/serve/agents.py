"""`r1chat launch claude|codex|opencode`: a coding agent on a local model, in one command.

It reuses an `r1chat serve` already answering on the port, else starts one (with a
context the agent's prompts fit, as far as this machine allows: the server grows it
later if a prompt needs more), then runs the agent pointed at it through the agent's own
environment variables and flags, for this one run: nothing is written to the agent's
configuration. The server it started stops when the agent exits; its log lines (one per
request) go to `launch.log` in the log folder, not over the agent's screen.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from r1chat.config.options import add_model_options
from r1chat.core.errors import R1ChatError, UsageError
from r1chat.core.lifeline import lifeline


@dataclass(frozen=True)
class Agent:
    command: str
    name: str
    install: str
    context: int  # what its prompts need: its system prompt and tools, and room to work

    def connect(self, root: str, model: str) -> tuple[dict[str, str], list[str]]:
        """The environment variables and leading arguments that point it at `root` and
        `model` for one run."""
        if self.command == "claude":
            names = ("MODEL", "DEFAULT_OPUS_MODEL", "DEFAULT_SONNET_MODEL", "DEFAULT_HAIKU_MODEL")
            env = {f"ANTHROPIC_{n}": model for n in (*names, "SMALL_FAST_MODEL")}
            env.update(
                ANTHROPIC_BASE_URL=root,
                ANTHROPIC_AUTH_TOKEN=os.environ.get("R1CHAT_API_KEY", "r1chat"),
                # its per-request attribution line would defeat the prompt cache
                CLAUDE_CODE_ATTRIBUTION_HEADER="0",
                CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
            )
            return env, []
        if self.command == "codex":
            provider = f'{{name="r1chat", base_url="{root}/v1", wire_api="responses"}}'
            flags = [
                *("-c", "model_provider=r1chat", "-c", f"model_providers.r1chat={provider}"),
                # hosted web search and sub-agents are not served: Codex must not offer them
                *("-c", "web_search=disabled", "-c", "features.multi_agent=false"),
                *("-c", "features.goals=false", "-m", model),
            ]
            return {}, flags
        config = {
            "$schema": "https://opencode.ai/config.json",
            "provider": {
                "r1chat": {
                    "npm": "@ai-sdk/openai-compatible",
                    "name": "r1chat",
                    "options": {"baseURL": f"{root}/v1"},
                    "models": {model: {"name": model}},
                }
            },
            "model": f"r1chat/{model}",
        }
        return {"OPENCODE_CONFIG_CONTENT": json.dumps(config)}, []


AGENTS = {
    a.command: a
    for a in (
        Agent("claude", "Claude Code", "npm install -g @anthropic-ai/claude-code", 32768),
        Agent("codex", "Codex", "npm install -g @openai/codex", 32768),
        Agent("opencode", "opencode", "npm install -g opencode-ai", 40960),
    )
}
_kept: list[int] = []  # lifelines of the servers this process started (open until it exits)
START_S = 600.0
"""How long a server may take to load its model before launch gives up."""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "launch",
        help="run a coding agent (claude, codex, opencode) on a local model",
        description="Run Claude Code, Codex or opencode on a local model: reuses the "
        "r1chat serve on the port or starts one, and points the agent at it for this run "
        "only (its own configuration is not touched). Arguments after -- go to the agent.",
        epilog="examples: r1chat launch claude -m r1:14b; r1chat launch codex -- exec "
        '"fix the failing test"; r1chat launch opencode -- run "explain main.py"',
    )
    _options(p)
    p.add_argument("agent", choices=sorted(AGENTS), help="the agent to run")
    p.add_argument(
        "rest",
        nargs=argparse.REMAINDER,
        metavar="...",
        help="these options, then -- and the agent's",
    )
    p.set_defaults(func=run)


def _options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, help="the server's port (11435)")
    add_model_options(p, remote=False)


def _split(args: argparse.Namespace) -> list[str]:
    """Read the options given after the agent's name (up to `--`) into `args`; the agent's
    arguments (after `--`)."""
    rest: list[str] = args.rest
    cut = rest.index("--") if "--" in rest else len(rest)
    ours = argparse.ArgumentParser(prog="r1chat launch AGENT", add_help=False)
    _options(ours)
    ours.parse_args(rest[:cut], namespace=args)
    return rest[cut + 1 :]


def run(args: argparse.Namespace) -> int:
    from r1chat.config.file import Config
    from r1chat.config.settings import resolve
    from r1chat.models.store import default_model
    from r1chat.serve.command import DEFAULT_PORT, model_id

    agent = AGENTS[args.agent]
    agent_args = _split(args)
    exe = shutil.which(agent.command)
    if exe is None:
        raise UsageError(
            f"{agent.name} is not installed (`{agent.command}` is not on PATH): {agent.install}"
        )
    config = Config.load()
    settings = resolve(config, vars(args))
    spec = settings.model or default_model(config)
    model = model_id(spec)
    port = args.port if args.port is not None else DEFAULT_PORT
    started: Started | None = None
    root = f"http://127.0.0.1:{port}"
    if not _is_r1chat(root):
        n_ctx = args.n_ctx or _context(agent, spec, settings)
        started = _start(spec, n_ctx, port if _free(port) else 0, _passed(args))
        root = started.root
    else:
        print(f"r1chat launch: using the r1chat serve at {root}", file=sys.stderr)
    env, flags = agent.connect(root, model)
    child_env = {**os.environ, **env}
    child_env.pop("ANTHROPIC_API_KEY", None)  # (a real key must not go to a local server)
    try:
        with _ignoring_ctrl_c():  # the agent's to handle; this process waits for it
            return subprocess.call([exe, *flags, *agent_args], env=child_env)
    finally:
        if started is not None:
            started.stop()


def _context(agent: Agent, spec: str, settings: Any) -> int:
    """The context to start the server with for `agent`: what it needs, at most what
    this machine fits for the model (said, when that is less)."""
    from r1chat.launch.local import largest_context

    largest = largest_context(spec, settings)
    if largest < agent.context:
        print(
            f"r1chat launch: {agent.name}'s prompts want a {agent.context:,}-token context; "
            f"{spec} can have {largest:,} on this machine",
            file=sys.stderr,
        )
    return min(agent.context, largest)


def _passed(args: argparse.Namespace) -> list[str]:
    """The model options given on the command line, for the server."""
    out = []
    for option, dest in (
        ("--gpu-layers", "gpu_layers"),
        ("--threads", "threads"),
        ("--kv-type", "kv_type"),
        ("--flash-attn", "flash_attn"),
        ("--repack", "repack"),
    ):
        if (value := getattr(args, dest, None)) is not None:
            out += [option, str(value)]
    return out


def _is_r1chat(root: str) -> bool:
    """Whether an r1chat serve answers at `root`."""
    import httpx2

    try:
        r = httpx2.get(f"{root}/api/version", timeout=2)
        return r.is_success and "r1chat" in r.json()
    except (httpx2.HTTPError, ValueError):
        return False


def _free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Started:
    """A server this launch started: its root URL; its lines go to `launch.log`."""

    def __init__(self, proc: subprocess.Popen[str], root: str) -> None:
        self.proc, self.root = proc, root

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _start(spec: str, n_ctx: int, port: int, passed: list[str]) -> Started:
    """Start `r1chat serve` for `spec` and wait until it serves (its lines to the log)."""
    from r1chat.config import paths

    print(
        f"r1chat launch: starting r1chat serve ({spec}, {n_ctx:,}-token context)…",
        file=sys.stderr,
        flush=True,
    )
    watched, kept = lifeline()  # the server stops when this process dies, however
    cmd = [sys.executable, "-m", "r1chat", "serve", "-m", spec, "--ctx", str(n_ctx)]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port), "--parent-fd", str(watched), *passed],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        pass_fds=(watched,),
        start_new_session=True,  # the agent's Ctrl-C (it interrupts a turn) is not the server's
    )
    os.close(watched)
    _kept.append(kept)
    assert proc.stdout is not None
    log = paths.log_dir() / "launch.log"
    first = _first_line(proc, proc.stdout)
    if "http://" not in first:
        proc.wait(5)
        raise R1ChatError(first.removeprefix("error: ") or "r1chat serve did not start")
    url = first.split("http://", 1)[1].split()[0].removesuffix("/v1")
    threading.Thread(target=_keep, args=(proc.stdout, log, first), daemon=True).start()
    return Started(proc, f"http://{url}")


def _first_line(proc: subprocess.Popen[str], out: IO[str]) -> str:
    """The server's first line (the URL, or why it stopped), within `START_S`."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(out.readline()), daemon=True)
    reader.start()
    reader.join(START_S)
    if not lines:
        proc.kill()
        raise R1ChatError(f"r1chat serve did not start within {START_S:.0f} s")
    return lines[0].strip()


def _keep(out: IO[str], log: Path, first: str) -> None:
    """The server's lines, into the log (the agent has the screen)."""
    with contextlib.suppress(OSError):
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {first}\n")
            for line in out:
                f.write(line)
                f.flush()


@contextlib.contextmanager
def _ignoring_ctrl_c() -> Any:
    """Ctrl-C does nothing here (a handler, not SIG_IGN, which the agent would inherit)."""
    previous = signal.signal(signal.SIGINT, lambda signum, frame: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
