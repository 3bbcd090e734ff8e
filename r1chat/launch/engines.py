"""The engine a `Settings` asks for: a server it names (`launch.remotes`), else a local
model (`launch.local`)."""

from __future__ import annotations

from r1chat.config.settings import Settings
from r1chat.engine.base import Engine


def open_engine(settings: Settings) -> Engine:
    """Load the model (seconds to minutes): call it off the UI thread."""
    from r1chat.launch.local import open_named
    from r1chat.launch.remotes import find_remote, open_remote
    from r1chat.models.store import default_model

    if (remote := find_remote(settings)) is not None:
        return open_remote(remote)
    # Without -m: the configured default, else an installed model, else r1:7b (whose
    # "not installed" error then says how to pull it).
    return open_named(settings.model or default_model(), settings)
