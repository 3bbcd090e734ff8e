"""The models folder's small JSON indexes (imported models, Hub models): read with one
clear error, written atomically (a crash leaves the old file, never half a new one)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from r1chat.core.errors import R1ChatError


def read(path: Path, what: str) -> dict[str, Any]:
    """The JSON object in `path` (empty when there is none); R1ChatError naming `what`
    when it cannot be read or is not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise R1ChatError(f"cannot read {what} {path}: {e}") from None
    if not isinstance(data, dict):
        raise R1ChatError(f"cannot read {what} {path}: not a JSON object")
    return data


def write(path: Path, data: dict[str, Any]) -> None:
    """Replace `path` with `data` (raises OSError; no temporary file is left behind)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".json")
    except OSError as e:  # name the file the user knows, not the temporary one
        raise OSError(e.errno, e.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
