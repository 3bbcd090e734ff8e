"""Which models a client may name: the installed ones (catalog and imported names) and
the one the server was started with. Clients never load a file by path."""

from __future__ import annotations

from r1chat.serve.requests import BadRequest


class Names:
    """`default` is the id of the model the server was started with (`spec` opens it)."""

    def __init__(self, default: str, spec: str) -> None:
        self.default, self.spec = default, spec

    def listed(self) -> list[str]:
        """The default first, then every installed model."""
        from r1chat.models.catalog import load_catalog
        from r1chat.models.store import installed_entries, load_index

        names = [e.name for e in installed_entries(load_catalog())] + sorted(load_index())
        return [self.default, *(n for n in names if n != self.default)]

    def resolve(self, requested: str | None) -> str:
        """The id to load for a request's `model` (None: the default); 404 if unknown."""
        if requested is None or requested in (self.default, self.spec):
            return self.default
        known = self.listed()
        lowered = requested.lower()
        if lowered in known:
            return lowered
        from r1chat.models.catalog import suggest

        raise BadRequest(
            f"model {requested!r} is not installed here{suggest(lowered, known)} "
            f"(installed: {', '.join(known)}; see GET /v1/models)",
            "model",
            status=404,
            code="model_not_found",
        )

    def spec_for(self, model: str) -> str:
        """What to open for an id `resolve` gave."""
        return self.spec if model == self.default else model
