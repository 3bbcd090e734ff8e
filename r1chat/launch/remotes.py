"""Which OpenAI-compatible server, if any, a `Settings` names, and opening it.

- `--endpoint URL`: that server; `-m` names the served model (found in `/models` when
  omitted, or when it names a catalog entry marked `remote`, such as `r1:671b`).
- `-m NAME` where the config has `[remotes.NAME]` (`url`, `model`, `api_key_env`,
  `timeout`): that server.
- `-m NAME` for a catalog entry marked `remote` and no such config entry: an error that
  says how to point r1chat at a server.

The API key is read from the environment variable named by `--api-key-env` or the
entry's `api_key_env` (default: `R1CHAT_API_KEY` when set); it is never stored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from r1chat.config.file import Config
from r1chat.config.schema import Remote
from r1chat.config.settings import Settings
from r1chat.core.errors import R1ChatError

if TYPE_CHECKING:
    from r1chat.engine.remote.engine import RemoteEngine

DEFAULT_KEY_ENV = "R1CHAT_API_KEY"
PREFER = ("r1", "reasoner")
"""For a catalog remote entry: which served model to pick when a server lists several."""


@dataclass(frozen=True, slots=True)
class RemoteTarget:
    url: str
    model: str | None  # None: ask the server
    api_key_env: str | None
    key_source: str  # where the variable's name came from, for error messages
    timeout: float | None = None
    prefer: tuple[str, ...] = ()


def find_remote(settings: Settings, config: Config | None = None) -> RemoteTarget | None:
    model = settings.model
    prefer: tuple[str, ...]
    if settings.endpoint:
        served, prefer = model, ()
        if model and _catalog_remote(model):
            served, prefer = None, PREFER
        env, source = _key_env(settings.api_key_env, "--api-key-env")
        return RemoteTarget(settings.endpoint, served, env, source, prefer=prefer)
    if not model:
        return None
    config = config or Config.load()
    entry = config.values.remotes.get(model)
    if entry is not None:
        return _from_config(model, entry, settings)
    if Path(model).expanduser().is_file():  # (a path: opened as it is)
        return None
    if _catalog_remote(model):
        raise R1ChatError(
            f"{model} runs on a server, not here: serve it with vLLM, SGLang or llama-server "
            f'and pass --endpoint URL, or add [remotes."{model}"] url = "http://HOST:8000/v1" '
            f"to {config.path}"
        )
    return None


def _from_config(name: str, entry: Remote, settings: Settings) -> RemoteTarget:
    if settings.api_key_env:
        env, source = _key_env(settings.api_key_env, "--api-key-env")
    else:
        env, source = _key_env(entry.api_key_env, f"api_key_env of [remotes.{name}]")
    prefer = PREFER if entry.model is None and _catalog_remote(name) else ()
    return RemoteTarget(entry.url, entry.model or None, env, source, entry.timeout, prefer)


def _key_env(name: str | None, source: str) -> tuple[str | None, str]:
    if name:
        return name, source
    if os.environ.get(DEFAULT_KEY_ENV):
        return DEFAULT_KEY_ENV, "the default"
    return None, source


def _catalog_remote(name: str) -> bool:
    try:
        from r1chat.models.catalog import load_catalog

        entry = load_catalog().get(name)
    except (R1ChatError, OSError):
        return False
    return entry is not None and entry.remote


def open_remote(target: RemoteTarget) -> RemoteEngine:
    """A connected `RemoteEngine` (asks the server for its model when none is named)."""
    from r1chat.engine.remote.engine import DEFAULT_TIMEOUT, RemoteEngine

    key = api_key_from_env(target.api_key_env, target.key_source)
    return RemoteEngine(
        target.url,
        model=target.model,
        api_key=key,
        api_key_env=target.api_key_env,
        timeout=target.timeout or DEFAULT_TIMEOUT,
        prefer=target.prefer,
    )


def api_key_from_env(name: str | None, source: str = "--api-key-env") -> str | None:
    """The key held by environment variable `name` (None: no key)."""
    if not name:
        return None
    value = os.environ.get(name)
    if not value:
        raise R1ChatError(f"environment variable {name} (named by {source}) is not set")
    return value.strip()
