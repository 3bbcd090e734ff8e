"""Which tools the user allowed always (`mcp-allowed.json` in the config folder): asked
once, never again. "Allow once" and "deny" are for that call only."""

from __future__ import annotations

import json
from pathlib import Path

from r1chat.config import paths


def _file() -> Path:
    return paths.config_dir() / "mcp-allowed.json"


def always() -> set[str]:
    """`server/tool` keys allowed always (a file that does not read: none)."""
    try:
        data = json.loads(_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    allowed = data.get("always") if isinstance(data, dict) else None
    return {k for k in allowed if isinstance(k, str)} if isinstance(allowed, list) else set()


def allow_always(key: str) -> str | None:
    """Remember `key` (`server/tool`); why it could not be saved, if it could not."""
    keys = always() | {key}
    path = _file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"always": sorted(keys)}, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as e:
        return f"could not save {path}: {e.strerror or e}"
    return None
