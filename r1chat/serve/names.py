"""Which models a client may name: the installed ones (catalog and imported names) and
the one the server was started with. Clients never load a file by path."""

from __future__ import annotations

from r1chat.serve.errors import ApiError, quoted


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
        lowered = ollama_name(requested.lower())
        if lowered == self.default:
            return self.default
        if lowered in known:
            return lowered
        from r1chat.models.catalog import load_catalog, suggest
        from r1chat.models.store import is_installed

        entry = load_catalog().get(lowered)  # a Hub name with its quantization, say
        if entry is not None and is_installed(entry):
            return entry.name

        raise ApiError(
            f"model {quoted(requested)} is not installed here{suggest(lowered, known)} "
            f"(installed: {', '.join(known)}; see GET /v1/models)",
            "model",
            status=404,
            code="model_not_found",
        )

    def spec_for(self, model: str) -> str:
        """What to open for an id `resolve` gave."""
        return self.spec if model == self.default else model


OLLAMA_DISTILLS = {
    **{f"deepseek-r1:{size}": f"r1:{size}" for size in ("1.5b", "7b", "14b", "32b", "70b")},
    "deepseek-r1:8b": "r1:8b-0528",
    "deepseek-r1": "r1:8b-0528",
}
"""Ollama's names for the R1 distills r1chat's catalog has under its own names. Ollama's
`deepseek-r1:8b` (and `:latest`) is R1-0528-Qwen3-8B, the catalog's `r1:8b-0528` (not
`r1:8b`, R1-Distill-Llama-8B)."""


def ollama_name(name: str) -> str:
    """A name as Ollama clients write it, as r1chat's: `:latest` dropped, `hf.co/` kept
    (the Hub names are the same), Ollama's R1 distill tags as the catalog's names."""
    if name.endswith(":latest"):
        name = name[: -len(":latest")]
    return OLLAMA_DISTILLS.get(name, name)
