"""MCP servers from a JSON file in Claude Desktop's shape (`mcp.json` in the config folder):

    {"mcpServers": {
        "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "."]},
        "search": {"url": "https://example.com/mcp", "headers": {"Authorization": "Bearer …"}},
        "old": {"command": "uvx", "args": ["old-server"], "disabled": true}}}

A server is `command` (+ `args`, `env`, `cwd`: stdio) or `url` (+ `headers`: streamable
HTTP). Anything else is one line naming the server and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1chat.config import paths
from r1chat.core.errors import UsageError

_KNOWN = {"command", "args", "env", "cwd", "url", "headers", "disabled", "type", "transport"}


@dataclass(frozen=True, slots=True)
class ServerSpec:
    name: str
    command: str = ""
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    disabled: bool = False

    @property
    def where(self) -> str:
        """What it runs or reaches, for lists and errors."""
        return self.url or " ".join((self.command, *self.args))


def default_file() -> Path:
    return paths.config_dir() / "mcp.json"


def load(path: Path | None = None, *, required: bool = False) -> list[ServerSpec]:
    """The servers of `path` (default: `mcp.json` in the config folder; none when it does
    not exist, unless `required`). `UsageError` names what is wrong."""
    path = path or default_file()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise UsageError(f"{path}: no such file") from None
        return []
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: cannot read it ({getattr(e, 'strerror', None) or e})") from None
    try:
        data = json.loads(text)
    except ValueError as e:
        raise UsageError(f"{path}: not JSON ({e})") from None
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise UsageError(f'{path}: expected {{"mcpServers": {{NAME: {{...}}}}}}')
    return [_spec(path, str(name), body) for name, body in servers.items()]


def _spec(path: Path, name: str, body: Any) -> ServerSpec:
    where = f"{path}: server {name!r}"
    if not isinstance(body, dict):
        raise UsageError(f"{where}: expected an object")
    unknown = sorted(set(body) - _KNOWN)
    if unknown:
        raise UsageError(f"{where}: unknown field {unknown[0]!r}")
    command, url = body.get("command", ""), body.get("url", "")
    if not isinstance(command, str) or not isinstance(url, str) or bool(command) == bool(url):
        raise UsageError(f"{where}: give either a 'command' (stdio) or a 'url' (HTTP)")
    args = body.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise UsageError(f"{where}: 'args' must be a list of strings")
    env, headers = _strings(where, body, "env"), _strings(where, body, "headers")
    cwd = body.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        raise UsageError(f"{where}: 'cwd' must be a string")
    if url and not url.startswith(("http://", "https://")):
        raise UsageError(f"{where}: 'url' must start with http:// or https://")
    return ServerSpec(
        name, command, tuple(args), env, cwd, url, headers, bool(body.get("disabled", False))
    )


def _strings(where: str, body: dict[str, Any], key: str) -> dict[str, str]:
    value = body.get(key, {})
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise UsageError(f"{where}: {key!r} must be an object of strings")
    return {str(k): v for k, v in value.items()}
