"""The engines a model host opens (`host.commands.EngineFactory`): for the chat and `ask`,
a server `Settings` name (`launch.remotes`) or a local model (`launch.local`); for
`serve`, a local model only."""

from __future__ import annotations

from r1chat.config.settings import Settings
from r1chat.engine.base import Engine


def open_engine(settings: Settings, name: str | None = None) -> Engine:
    """Load the model (seconds to minutes): call it off the UI thread. `name`: what its
    info calls it (None: the GGUF's own name, or what the server serves)."""
    from r1chat.launch.local import open_named
    from r1chat.launch.remotes import find_remote, open_remote
    from r1chat.models.store import default_model

    if (remote := find_remote(settings)) is not None:
        return open_remote(remote)
    # Without -m: the configured default, else an installed model, else r1:7b (whose
    # "not installed" error then says how to pull it).
    return open_named(settings.model or default_model(), settings, name)


def open_served(settings: Settings, name: str | None = None) -> Engine:
    """A model `serve` runs: always a local one (`settings.model` its spec), several
    replies at once when `settings.sequences` says so."""
    from r1chat.launch.local import open_named

    assert settings.model is not None
    return open_named(settings.model, settings, name)
