"""What the `models` subcommands share: the catalog and context they were given, tables."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from r1chat.models.catalog import Catalog


def catalog_of(args: argparse.Namespace) -> Catalog:
    from r1chat.models.catalog import load_catalog

    return load_catalog(getattr(args, "catalog", None))


def ctx_of(args: argparse.Namespace) -> int:
    from r1chat.core.errors import UsageError
    from r1chat.core.request import DEFAULT_CTX

    ctx = getattr(args, "ctx", None)
    if ctx is None:
        from r1chat.config.file import Config

        ctx = Config.load().values.model.ctx or DEFAULT_CTX
    if ctx <= 0:
        raise UsageError("--ctx must be positive")
    return int(ctx)


def kv_of(args: argparse.Namespace) -> str:
    """The KV cache type to size for: --kv-type, else the config's, else f16."""
    kv = getattr(args, "kv_type", None)
    if kv is None:
        from r1chat.config.file import Config

        kv = Config.load().values.model.kv_type or "f16"
    return str(kv)


def table(rows: list[list[str]], head: list[str]) -> str:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [head, *rows]
    ]
    return "\n".join(lines)
