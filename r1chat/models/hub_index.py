"""The Hub repositories pulled by name (`models pull OWNER/REPO:QUANT`), kept as a catalog
layer in `hub.json` in the models folder, so every command knows them as it knows the
built-in models (`models`, `-m`, `rm`, `info`, `path`, `default`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from r1chat.config import paths
from r1chat.core.errors import R1ChatError
from r1chat.models import jsonfile

FILE = "hub.json"
HUB_PREFIX = r"(?:https?://)?(?:hf\.co|huggingface\.co)/"
"""`hf.co/owner/repo:quant` names what `owner/repo:quant` does."""


def index_path() -> Path:
    return paths.models_dir() / FILE


def load() -> dict[str, dict[str, Any]]:
    """Model name -> its catalog table (empty when nothing was pulled from the Hub)."""
    return jsonfile.read(index_path(), "the list of models pulled from the Hub")


def add(name: str, table: dict[str, Any]) -> None:
    """Record a pulled quantization (`hub_repos.catalog_table`) under model `name`."""
    index = load()
    old = index.get(name)
    if old is not None:
        table = {**table, "quants": {**old.get("quants", {}), **table["quants"]}}
        if not old.get("estimated", True):  # a header already said the real shape
            table.update({k: old[k] for k in ("layers", "kv_heads", "head_dim", "estimated")})
    index[name] = table
    _save(index)


def set_shape(name: str, layers: int, kv_heads: int, head_dim: int, context: int) -> None:
    """The shape read from the model's GGUF header, replacing the estimate."""
    index = load()
    if name in index:
        index[name].update(layers=layers, kv_heads=kv_heads, head_dim=head_dim, estimated=False)
        if context:
            index[name]["context"] = context
        _save(index)


def remove_quant(name: str, quant: str) -> None:
    """Forget one quantization (after `models rm`); the model goes with its last one."""
    index = load()
    table = index.get(name)
    if table is None:
        return
    table.get("quants", {}).pop(quant, None)
    if not table.get("quants"):
        del index[name]
    _save(index)


def _save(index: dict[str, dict[str, Any]]) -> None:
    path = index_path()
    try:
        jsonfile.write(path, index)
    except OSError as e:
        raise R1ChatError(f"cannot write {path}: {e.strerror}") from None
