"""The model catalog: the built-in `models.toml` plus the user's additions and overrides.

The user catalog is `--catalog FILE`, else `$R1CHAT_CATALOG`, else `models.toml` in
r1chat's config folder (optional). It has the built-in layout; a table for a name that
exists already is merged over it field by field (quantizations too, so a user can pin a
`sha256` or a `revision` without repeating the rest), a new name adds a model.

Every model becomes one `Entry` per quantization, named `NAME-quant` (`r1:7b-q8_0`), and
`NAME` alone is the default quantization. Errors say the file, the entry and the reason
in one line.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from r1chat.config import paths
from r1chat.core.errors import R1ChatError, UnknownModel
from r1chat.core.utf8 import decode
from r1chat.models import hub_index

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ENV = "R1CHAT_CATALOG"
BUILTIN = "built-in catalog"
DEFAULT_QUANT = "Q4_K_M"

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*(:[a-z0-9][a-z0-9._-]*)?$")
_QUANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

_MODEL_FIELDS: dict[str, type | tuple[type, ...]] = {
    "title": str,
    "repo": str,
    "revision": str,
    "arch": str,
    "params": int,
    "layers": int,
    "kv_heads": int,
    "head_dim": int,
    "context": int,
    "license": str,
    "default_quant": str,
    "remote": bool,
    "note": str,
    "quants": dict,
}
_QUANT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "file": str,
    "files": list,
    "subfolder": str,
    "size": int,
    "sha256": (str, list),
}
_TYPE_NAMES = {
    int: "an integer",
    str: "a string",
    bool: "true or false",
    dict: "a table",
    list: "a list",
}
_REQUIRED_LOCAL = ("repo", "layers", "kv_heads", "head_dim", "context", "quants")


_HUB_PREFIX = re.compile(f"^{hub_index.HUB_PREFIX}")


class CatalogError(R1ChatError):
    """A catalog file is unusable: `FILE: entry NAME: reason`."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One downloadable model in one quantization (or a remote-only model)."""

    name: str  # what users type: "r1:7b" (default quant) or "r1:7b-q8_0"
    model: str  # the model it belongs to: "r1:7b"
    title: str
    quant: str | None = None  # "Q4_K_M"; None for a remote-only model
    repo: str | None = None
    revision: str = "main"
    subfolder: str | None = None
    files: tuple[str, ...] = ()
    sha256: tuple[str | None, ...] = ()
    size: int = 0  # bytes, all files
    params: int = 0
    layers: int = 0
    kv_heads: int = 0
    head_dim: int = 0
    context: int = 0
    license: str = ""
    arch: str = ""
    remote: bool = False
    note: str = ""
    source: str = BUILTIN  # the file that defined (or last changed) it
    is_default: bool = False  # `name` is the model's bare name
    hub: bool = False  # pulled from the Hub by its repo's name (`OWNER/REPO:QUANT`)
    estimated: bool = False  # the KV shape is a guess until the GGUF header is read

    @property
    def kv_bytes_per_token(self) -> int:
        """KV cache bytes per token of context at f16: K and V for every layer."""
        return 2 * self.layers * self.kv_heads * self.head_dim * 2

    @property
    def repo_paths(self) -> tuple[str, ...]:
        """The files' paths inside the repository."""
        prefix = f"{self.subfolder.strip('/')}/" if self.subfolder else ""
        return tuple(prefix + f for f in self.files)

    @property
    def variant(self) -> str:
        """`r1:7b-q4_k_m` even for the bare-name alias."""
        sep = ":" if self.hub else "-"
        return f"{self.model}{sep}{self.quant.lower()}" if self.quant else self.model


@dataclass(slots=True)
class Catalog:
    entries: dict[str, Entry] = field(default_factory=dict)  # every name, aliases included
    sources: tuple[str, ...] = (BUILTIN,)

    def get(self, name: str) -> Entry | None:
        return self.entries.get(_HUB_PREFIX.sub("", name.strip().lower()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.listed())

    def listed(self) -> list[Entry]:
        """What `r1chat models` shows: each model's bare name, then its other quants."""
        out = []
        for e in self.entries.values():
            bare = self.entries.get(e.model)
            if e.is_default or bare is None or bare.quant != e.quant:
                out.append(e)
        return out

    def models(self) -> list[Entry]:
        """One entry per model: its default quantization (or the remote entry)."""
        return [e for e in self.entries.values() if e.is_default]

    def require(self, name: str) -> Entry:
        entry = self.get(name)
        if entry is None:
            raise UnknownModel(
                f"unknown model {name!r}{suggest(name, self.entries)} (see: r1chat models)"
            )
        return entry


def suggest(name: str, names: Iterable[str]) -> str:
    """A hint such as `; did you mean r1:7b?` for a near miss, else an empty string."""
    import difflib

    close = difflib.get_close_matches(name.lower(), list(names), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


# -- loading -------------------------------------------------------------------------

_cache: dict[tuple[str, int, int], Catalog] = {}


def user_catalog_path(explicit: str | Path | None = None) -> tuple[Path | None, bool]:
    """(path, must_exist): `--catalog`, else $R1CHAT_CATALOG, else the config folder's."""
    if explicit:
        return Path(explicit).expanduser(), True
    if env := os.environ.get(ENV):
        return Path(env).expanduser(), True
    return paths.config_dir() / "models.toml", False


def params_label(n: int) -> str:
    """A parameter count for tables: `7.6B`, `671B`, `?` when unknown."""
    if not n:
        return "?"
    b = n / 1e9
    return f"{b:.0f}B" if b >= 100 else f"{b:.1f}B"


def load_catalog(user_file: str | Path | None = None) -> Catalog:
    """The built-in catalog merged with the user's; raises CatalogError when invalid."""
    path, must_exist = user_catalog_path(user_file)
    try:
        stat_key = path.stat().st_mtime_ns if path else 0
    except FileNotFoundError:
        if must_exist:
            raise CatalogError(f"catalog {path}: no such file") from None
        path, stat_key = None, 0
    except OSError as e:
        raise CatalogError(f"catalog {path}: {e.strerror}") from None
    key = (str(path or ""), stat_key, _mtime(hub_index.index_path()))
    if key not in _cache:
        _cache.clear()
        _cache[key] = _build(path)
    return _cache[key]


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def builtin_text() -> str:
    from importlib.resources import files

    return files("r1chat.models").joinpath("models.toml").read_text(encoding="utf-8")


def _build(user_path: Path | None) -> Catalog:
    layers: list[tuple[str, dict[str, Any]]] = [(BUILTIN, parse(builtin_text(), BUILTIN))]
    if user_path is not None:
        try:
            text = decode(user_path.read_bytes(), f"catalog {user_path}")
        except OSError as e:
            raise CatalogError(f"catalog {user_path}: cannot read: {e.strerror}") from None
        layers.append((str(user_path), parse(text, str(user_path))))
    if pulled := hub_index.load():
        layers.append((str(hub_index.index_path()), pulled))
    return build(layers)


def parse(text: str, source: str) -> dict[str, Any]:
    """Parse one catalog file and check every field it sets (not yet completeness)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CatalogError(f"catalog {source}: bad TOML: {e}") from None
    unknown = [k for k in data if k != "models"]
    if unknown:
        raise CatalogError(
            f"catalog {source}: unknown top-level key {unknown[0]!r} "
            '(models go in [models."NAME"] tables)'
        )
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise CatalogError(f"catalog {source}: 'models' must be a table")
    for name, table in models.items():
        _check_fields(source, name, table)
    return models


def _fail(source: str, name: str, reason: str, quant: str | None = None) -> CatalogError:
    where = f"entry {name!r}" + (f" quant {quant}" if quant else "")
    return CatalogError(f"catalog {source}: {where}: {reason}")


def _check_fields(source: str, name: str, table: Any) -> None:
    if not _NAME.match(name):
        raise _fail(
            source,
            name,
            "bad name (use lowercase letters, digits, '.', '-', '_' and one ':', like r1:7b)",
        )
    if not isinstance(table, dict):
        raise _fail(source, name, "must be a table")
    for key, value in table.items():
        if key not in _MODEL_FIELDS:
            raise _fail(source, name, f"unknown field {key!r}")
        _check_type(source, name, key, value, _MODEL_FIELDS[key])
    for key in ("params", "layers", "kv_heads", "head_dim", "context"):
        if key in table and table[key] <= 0:
            raise _fail(source, name, f"{key} must be positive, not {table[key]}")
    if "repo" in table and not (_REPO.match(table["repo"]) and ".." not in table["repo"]):
        raise _fail(source, name, f"bad repo id {table['repo']!r} (want owner/name)")
    if "revision" in table and not _valid_revision(table["revision"]):
        raise _fail(source, name, f"bad revision {table['revision']!r}")
    for quant, qtable in table.get("quants", {}).items():
        _check_quant(source, name, quant, qtable)


def _check_type(
    source: str, name: str, key: str, value: Any, want: Any, quant: str | None = None
) -> None:
    types = want if isinstance(want, tuple) else (want,)
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        names = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
        raise _fail(source, name, f"{key} must be {names}, not {value!r}", quant)


def _check_quant(source: str, name: str, quant: str, table: Any) -> None:
    if not _QUANT.match(quant):
        raise _fail(source, name, "bad quantization name", quant)
    if not isinstance(table, dict):
        raise _fail(source, name, "must be a table", quant)
    for key, value in table.items():
        if key not in _QUANT_FIELDS:
            raise _fail(source, name, f"unknown field {key!r}", quant)
        _check_type(source, name, key, value, _QUANT_FIELDS[key], quant)
    if "file" in table and "files" in table:
        raise _fail(source, name, "give file or files, not both", quant)
    files = [table["file"]] if "file" in table else table.get("files", [])
    if "files" in table and not files:
        raise _fail(source, name, "files is empty", quant)
    for f in files:
        if reason := file_name_problem(f):
            raise _fail(source, name, reason, quant)
    if "size" in table:
        if table["size"] < 0:
            raise _fail(source, name, f"negative size {table['size']}", quant)
        if table["size"] == 0:
            raise _fail(source, name, "size must be positive", quant)
    if "subfolder" in table and (reason := subfolder_problem(table["subfolder"])):
        raise _fail(source, name, reason, quant)
    sha = table.get("sha256")
    for digest in [sha] if isinstance(sha, str) else sha or []:
        if not isinstance(digest, str) or not _SHA256.match(digest.lower()):
            raise _fail(source, name, f"bad sha256 {digest!r} (want 64 hex digits)", quant)


def file_name_problem(name: Any) -> str | None:
    """Why `name` cannot be a model file name (a bare name, no path), or None."""
    if not isinstance(name, str) or not name:
        return "empty file name"
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return f"file name {name!r} is an absolute path"
    if "/" in name or "\\" in name:
        return f"file name {name!r} contains a path separator (put folders in subfolder)"
    if name in (".", "..") or ".." in name:
        return f"file name {name!r} contains '..'"
    if "\0" in name or any(ord(c) < 32 for c in name):
        return f"file name {name!r} contains a control character"
    if not name.lower().endswith(".gguf"):
        return f"file name {name!r} does not end in .gguf"
    return None


def subfolder_problem(folder: str) -> str | None:
    if folder.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", folder):
        return f"subfolder {folder!r} is an absolute path"
    parts = folder.strip("/").split("/")
    if "\\" in folder or any(p in ("", ".", "..") for p in parts):
        return f"bad subfolder {folder!r} (no '..', '.', '\\\\' or empty parts)"
    return None


def _valid_revision(rev: str) -> bool:
    return bool(rev) and ".." not in rev and not rev.startswith("/") and "\\" not in rev


# -- merging and building ------------------------------------------------------------


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if key == "quants" and isinstance(out.get("quants"), dict):
            quants = dict(out["quants"])
            for q, qt in value.items():
                prev = dict(quants.get(q, {}))
                if "file" in qt or "files" in qt:
                    prev.pop("file", None), prev.pop("files", None)
                    prev.pop("sha256", None) if "sha256" not in qt else None
                quants[q] = {**prev, **qt}
            out["quants"] = quants
        else:
            out[key] = value
    return out


def build(layers: list[tuple[str, dict[str, Any]]]) -> Catalog:
    """Merge parsed catalog files (later ones win) and expand them into entries."""
    merged: dict[str, dict[str, Any]] = {}
    owner: dict[str, str] = {}
    for source, models in layers:
        for name, table in models.items():
            merged[name] = _merge(merged.get(name, {}), table)
            owner[name] = source
    catalog = Catalog(sources=tuple(s for s, _ in layers))
    for name, table in merged.items():
        for entry in _expand(owner[name], name, table):
            if entry.name in catalog.entries and catalog.entries[entry.name].model != name:
                raise _fail(
                    owner[name],
                    name,
                    f"name {entry.name} is already used by {catalog.entries[entry.name].model}",
                )
            catalog.entries[entry.name] = entry
    return catalog


def _expand(source: str, name: str, t: dict[str, Any]) -> list[Entry]:
    common: dict[str, Any] = dict(
        model=name,
        title=t.get("title", name),
        repo=t.get("repo"),
        revision=t.get("revision", "main"),
        params=t.get("params", 0),
        layers=t.get("layers", 0),
        kv_heads=t.get("kv_heads", 0),
        head_dim=t.get("head_dim", 0),
        context=t.get("context", 0),
        license=t.get("license", ""),
        arch=t.get("arch", ""),
        note=t.get("note", ""),
        source=source,
        hub=bool(t.get("hub", False)),
        estimated=bool(t.get("estimated", False)),
    )
    if t.get("remote", False):
        return [Entry(name=name, remote=True, is_default=True, **common)]
    quants: dict[str, dict[str, Any]] = t.get("quants", {})
    if not quants:
        raise _fail(
            source,
            name,
            f"no quantizations (add a [models.{name!r}.quants.Q4_K_M] table with file and size)",
        )
    for key in _REQUIRED_LOCAL:
        if key not in t:
            raise _fail(source, name, f"missing field {key!r}")
    default = t.get("default_quant") or (
        DEFAULT_QUANT if DEFAULT_QUANT in quants else next(iter(quants))
    )
    if default not in quants:
        raise _fail(source, name, f"default_quant {default} is not among its quants")
    entries: list[Entry] = []
    for quant, q in quants.items():
        if "file" not in q and "files" not in q:
            raise _fail(source, name, "missing field 'file'", quant)
        if "size" not in q:
            raise _fail(source, name, "missing field 'size'", quant)
        files = (q["file"],) if "file" in q else tuple(q["files"])
        sha = q.get("sha256")
        digests: tuple[str | None, ...] = (
            ((sha.lower(),) if isinstance(sha, str) else tuple(s.lower() for s in sha))
            if sha
            else (None,) * len(files)
        )
        if len(digests) != len(files):
            raise _fail(source, name, f"{len(digests)} sha256 for {len(files)} files", quant)
        variant = Entry(
            name=f"{name}{':' if common['hub'] else '-'}{quant.lower()}",
            quant=quant,
            files=files,
            sha256=digests,
            size=q["size"],
            subfolder=q.get("subfolder"),
            **common,
        )
        if quant == default:
            entries.insert(0, replace(variant, name=name, is_default=True))
        entries.append(variant)
    return entries
