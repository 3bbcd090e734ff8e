"""Open the engine a `Settings` asks for."""

from __future__ import annotations

from pathlib import Path

from r1chat.config.settings import Settings
from r1chat.engine.base import Engine


def model_path(spec: str) -> Path:
    """A model given as a path, a catalog name (`r1:7b`) or an imported name."""
    path = Path(spec).expanduser()
    if path.exists() or "/" in spec or spec.endswith(".gguf"):
        return path
    from r1chat.models.store import resolve_model

    return resolve_model(spec)


def open_engine(settings: Settings) -> Engine:
    """Load the model (seconds to minutes): call it off the UI thread."""
    from r1chat.engine.targets import find_remote, open_remote

    if (remote := find_remote(settings)) is not None:
        return open_remote(remote)
    from r1chat.engine.local.engine import DEFAULT_CTX, LocalEngine
    from r1chat.models.store import default_model

    # Without -m: the configured default, else an installed model, else r1:7b (whose
    # "not installed" error then says how to pull it).
    return LocalEngine(
        model_path(settings.model or default_model()),
        n_ctx=settings.n_ctx or DEFAULT_CTX,
        gpu_layers=settings.gpu_layers,
        threads=settings.threads,
    )
