"""GGUF headers read once: `header(path)` is `read_gguf(path)`, from a cache after the
first time. A file whose size, modification time or inode changed is read again.

Reading a header walks the vocabulary and its merges string by string: 15 ms for
SmolLM2's 49k tokens, 40 ms for an R1 distill's 152k, at every launch. The cache keeps
what was read (a long array's length, not the array), a small JSON file per model.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import stat
from pathlib import Path
from typing import Any

from r1chat.config import paths
from r1chat.models import jsonfile
from r1chat.models.gguf import ArrayInfo, GGUFInfo, read_gguf

_FORMAT = 1  # (bumped when what is kept changes: older entries are read again)


def header(path: Path) -> GGUFInfo:
    """`read_gguf(path)`, cached (a file that cannot be read is never cached: its error
    comes from `read_gguf` every time)."""
    try:
        found = path.stat()
    except OSError:
        return read_gguf(path)
    if not stat.S_ISREG(found.st_mode):
        return read_gguf(path)
    where = str(path.absolute())
    key = [_FORMAT, where, found.st_size, found.st_mtime_ns, found.st_ino]
    cache = _cache_file(where)
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        kept = json.loads(cache.read_text(encoding="utf-8"))
        if kept["key"] == key:
            return _decoded(kept["info"], path)
    info = read_gguf(path)
    with contextlib.suppress(OSError):
        jsonfile.write(cache, {"key": key, "info": _encoded(info)})
    return info


def _cache_file(path: str) -> Path:
    name = hashlib.sha1(path.encode(), usedforsecurity=False).hexdigest()[:20]
    return paths.data_dir() / "headers" / f"{name}.json"


def _encoded(info: GGUFInfo) -> dict[str, Any]:
    return {
        "version": info.version,
        "metadata": {k: _value(v) for k, v in info.metadata.items()},
        "tensor_count": info.tensor_count,
        "data_bytes": info.data_bytes,
        "file_size": info.file_size,
        "r1_markers": sorted(info.r1_markers),
        "tensors": {k: list(v) for k, v in info.tensors.items()},
    }


def _decoded(kept: dict[str, Any], path: Path) -> GGUFInfo:
    return GGUFInfo(
        path,
        kept["version"],
        metadata={k: _unvalue(v) for k, v in kept["metadata"].items()},
        tensor_count=kept["tensor_count"],
        data_bytes=kept["data_bytes"],
        file_size=kept["file_size"],
        r1_markers=frozenset(kept["r1_markers"]),
        tensors={k: tuple(v) for k, v in kept["tensors"].items()},
    )


def _value(v: Any) -> Any:
    """A metadata value in JSON (a long array as {"array": its length})."""
    if isinstance(v, ArrayInfo):
        return {"array": v.count}
    if isinstance(v, list):
        return [_value(x) for x in v]
    return v


def _unvalue(v: Any) -> Any:
    if isinstance(v, dict):
        return ArrayInfo(v["array"])
    if isinstance(v, list):
        return [_unvalue(x) for x in v]
    return v
