"""The user's TOML config file: read and validated with a clear error (its layout and
rules are `r1chat.config.schema`), written back atomically."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from r1chat.config import paths
from r1chat.config.schema import Values, parse
from r1chat.core import storage
from r1chat.core.errors import R1ChatError
from r1chat.core.utf8 import decode

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

Table = dict[str, Any]


class Config:
    """A nested mapping of config sections, bound to the file it came from."""

    def __init__(self, data: Table | None = None, path: Path | None = None) -> None:
        self.data: Table = data or {}
        self.path = path or paths.config_file()

    @classmethod
    def load(cls, path: Path | None = None) -> Config:
        path = path or paths.config_file()
        try:
            text = decode(path.read_bytes(), f"config {path}")
        except FileNotFoundError:
            return cls({}, path)
        except OSError as e:
            raise R1ChatError(f"cannot read config {path}: {e.strerror}") from None
        try:
            config = cls(tomllib.loads(text), path)
        except tomllib.TOMLDecodeError as e:
            raise R1ChatError(f"bad config {path}: {e}") from None
        config.values  # noqa: B018 - validate now: a bad value is reported at start
        return config

    @property
    def values(self) -> Values:
        """The config as typed values (raises ConfigError naming a bad key)."""
        return parse(self.data, self.path)

    def section(self, name: str) -> Table:
        """A section as the file holds it, unvalidated (dotted names reach sub-tables;
        empty if absent). Read settings through `values`."""
        node: Any = self.data
        for part in name.split("."):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return node if isinstance(node, dict) else {}

    def get(self, section: str, key: str, default: Any = None) -> Any:
        return self.section(section).get(key, default)

    def set(self, section: str, key: str, value: Any) -> None:
        """Set a key (None removes it); call `save()` to write the file."""
        node = self.data
        for part in section.split("."):
            node = node.setdefault(part, {})
        if value is None:
            node.pop(key, None)
        else:
            node[key] = value

    def save(self) -> None:
        """Write the file atomically (a crash never leaves it half-written; a write that
        fails leaves the old file and no temporary one, and says why in one line)."""
        tmp: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".config-", suffix=".toml")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(dumps(self.data))
            os.replace(tmp, self.path)
        except OSError as e:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            why = storage.problem(self.path, e)
            raise R1ChatError(f"cannot write the config {self.path}: {why}") from None


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _key(k: str) -> str:
    bare = k.replace("_", "").replace("-", "").isalnum() and k.isascii()
    return k if bare else json.dumps(k)


def dumps(data: Table, prefix: str = "") -> str:
    """TOML text for nested tables of scalars and lists (all r1chat writes)."""
    lines: list[str] = []
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    if prefix and (scalars or not tables):
        lines.append(f"[{prefix}]")
    lines += [f"{_key(k)} = {_value(v)}" for k, v in scalars.items()]
    if lines:
        lines.append("")
    for k, v in tables.items():
        lines.append(dumps(v, f"{prefix}.{_key(k)}" if prefix else _key(k)))
    return "\n".join(lines)
