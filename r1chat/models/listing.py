"""The model table both front ends show: catalog and imported models, their size, the fit
verdict for this machine at a context size, and installed / partial / default marks.

`r1chat models` prints `model_rows` (and `record` for `--json`); the chat's model screen
shows the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from r1chat.core.units import human
from r1chat.models import store
from r1chat.models.catalog import Catalog, Entry, params_label
from r1chat.models.fit import Fit, plan_entry, plan_file
from r1chat.models.hardware import Hardware


@dataclass(frozen=True, slots=True)
class ModelRow:
    """One line of the table: a catalog entry or an imported model."""

    name: str
    params: str
    quant: str
    size: int
    fit: Fit | None
    status: str  # "installed", "partial 42%", "remote only", "imported", ""
    entry: Entry | None = None  # None for an imported model
    path: str = ""  # an imported model's file
    copied: bool = False  # an imported model copied into the models folder
    installed: bool = False
    partial: bool = False
    have: int = 0  # bytes on disk
    default: bool = False
    in_use: bool = False

    @property
    def remote(self) -> bool:
        return self.entry is not None and self.entry.remote

    @property
    def badge(self) -> str:
        """GPU, GPU 19/29, CPU, won't fit; `server` for remote-only, `?` if unreadable."""
        if self.fit is not None:
            return self.fit.short
        return "server" if self.remote else "?"

    @property
    def fit_label(self) -> str:
        """The verdict in words (`partial offload (19 of 29 layers)`)."""
        if self.fit is not None:
            return self.fit.label
        return "needs a server" if self.remote else "? (unreadable)"


def _same(name: str, entry: Entry | None, wanted: str | None) -> bool:
    if not wanted:
        return False
    wanted = wanted.strip().lower()
    return name == wanted or (entry is not None and entry.variant == wanted)


def model_rows(
    catalog: Catalog,
    hw: Hardware,
    n_ctx: int,
    *,
    default: str | None = None,
    in_use: str | None = None,
    kv_type: str = "f16",
) -> list[ModelRow]:
    """Every catalog entry, then every imported model (raises R1ChatError for an
    unreadable index), sized with a `kv_type` KV cache."""
    rows = []
    for e in catalog.listed():
        st = store.state(e)
        status = "remote only" if e.remote else st.describe(e.size)
        rows.append(
            ModelRow(
                name=e.name,
                params=params_label(e.params),
                quant=e.quant or "-",
                size=e.size,
                fit=plan_entry(e, n_ctx, hw, kv_type),
                status="" if status == "-" else status,
                entry=e,
                installed=st.installed,
                partial=st.partial,
                have=st.have,
                default=_same(e.name, e, default),
                in_use=_same(e.name, e, in_use),
            )
        )
    for name, rec in sorted(store.load_index().items()):
        fit, size = plan_file(rec.path, n_ctx, hw, kv_type)
        rows.append(
            ModelRow(
                name=name,
                params="-",
                quant="-",
                size=size or rec.size,
                fit=fit,
                status="imported",
                path=rec.path,
                copied=rec.copied,
                installed=True,
                have=size or rec.size,
                default=_same(name, None, default) or _same(rec.path, None, default),
                in_use=_same(name, None, in_use) or _same(rec.path, None, in_use),
            )
        )
    return rows


def fit_record(fit: Fit | None) -> dict[str, Any] | None:
    if fit is None:
        return None
    return {
        "verdict": fit.verdict.name.lower(),
        "short": fit.short,
        "label": fit.label,
        "gpu_layers": fit.gpu_layers,
        "layers": fit.units,
        "memory": fit.need,
        "kv_cache": fit.kv,
    }


def record(row: ModelRow) -> dict[str, Any]:
    """A row as `r1chat models --json` writes it."""
    e = row.entry
    if e is None:
        return {
            "name": row.name,
            "path": row.path,
            "copied": row.copied,
            "size": row.size,
            "default": row.default,
            "fit": fit_record(row.fit),
        }
    return {
        "name": e.name,
        "title": e.title,
        "quant": e.quant,
        "params": e.params,
        "size": e.size,
        "repo": e.repo,
        "files": list(e.files),
        "remote": e.remote,
        "installed": row.installed,
        "partial": row.partial,
        "bytes_on_disk": row.have,
        "default": row.default,
        "fit": fit_record(row.fit),
    }


def hardware_line(hw: Hardware) -> str:
    """`RAM 25.3 GB · no GPU found · llama.cpp: CPU-only build`, above model tables."""
    if hw.gpus:
        gpu = ", ".join(
            f"{g.name} {human(g.total)}" + ("" if g.unified else f" ({human(g.free)} free)")
            for g in hw.gpus
        )
    else:
        gpu = "no GPU found"
    offload = f"llama.cpp: {hw.backend}" if hw.offload else "llama.cpp: CPU-only build"
    return f"RAM {human(hw.ram_total)} · {gpu} · {offload}"
