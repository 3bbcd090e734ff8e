"""The words about models in the chat: the models screen's row marks, the two lines about
the selected row, pull progress figures, column layout and badge colours, and the chat's
first-run hint (no widgets here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.content import Content

from r1chat.core import units
from r1chat.core.errors import R1ChatError
from r1chat.core.units import Meter, human
from r1chat.models.fit import Verdict
from r1chat.models.listing import ModelRow

if TYPE_CHECKING:
    from r1chat.models.download import PullProgress

IN_USE, DEFAULT = "▸", "*"  # narrow in every terminal (no East Asian ambiguous width)
LEGEND = f"{IN_USE} in use · {DEFAULT} default"
COLUMNS = (
    ("", "marks"),
    ("NAME", "name"),
    ("PARAMS", "params"),
    ("QUANT", "quant"),
    ("SIZE", "size"),
    ("FIT", "fit"),
    ("STATUS", "status"),
)

# theme variable for each fit badge (the app's theme decides the colour)
BADGE_COLOURS = {
    Verdict.GPU: "text-success",
    Verdict.PARTIAL: "text-warning",
    Verdict.CPU: "foreground",
    Verdict.NO: "text-error",
}


# -- the rows ----------------------------------------------------------------------------


def marks(row: ModelRow) -> str:
    return (IN_USE if row.in_use else " ") + (DEFAULT if row.default else " ")


def describe(row: ModelRow, n_ctx: int) -> str:
    """Two lines about the selected row, under the table."""
    e = row.entry
    title = f"{e.title} {e.quant or ''}".strip() if e is not None else row.path
    if row.fit is not None:
        fit = f"{row.fit.label}, {human(row.fit.need)} at {n_ctx:,} tokens"
    elif row.remote:
        fit = e.note if e is not None and e.note else "runs on an OpenAI-compatible server"
    else:
        fit = "cannot read this file's GGUF header"
    if row.remote:
        state = "not downloadable: serve it with vLLM, SGLang or llama-server"
    elif e is None:
        state = "imported: enter uses it · d forgets it (the file stays unless it was copied)"
    elif row.installed:
        state = f"installed, {human(row.have)} on disk · enter uses it · d deletes it"
    elif row.partial:
        state = f"partial download, {human(row.have)} on disk · p resumes it"
    else:
        state = f"not installed · p pulls it ({human(row.size)})"
    return f"{title}: {fit}\n{state}"


# -- pull progress -----------------------------------------------------------------------


def progress_text(p: PullProgress, meter: Meter) -> str:
    """`1.2 GB / 4.7 GB · 45.1 MB/s · ETA 1:12` (or what the pull is doing instead)."""
    if p.phase == "verify":
        return f"{human(p.done)} · verifying {p.file}…"
    if p.phase == "done":
        return f"{human(p.done)} · done"
    speed = meter.speed
    figures = f"{human(p.done)} / {human(p.total)}"
    if speed > 0:
        figures += f" · {units.speed(speed)} · ETA {units.clock(meter.eta(p.total))}"
    elif p.resumed:
        figures += f" · resuming from {human(p.resumed)}"
    return figures


def first_run_hint() -> Content | None:
    """With no model on disk at all: the two ways in, offline included (None otherwise)."""
    from r1chat.models import store
    from r1chat.models.catalog import load_catalog

    try:
        catalog = load_catalog()
        if store.installed_entries(catalog) or store.load_index():
            return None
        name = store.recommended_model(catalog)
    except R1ChatError:
        return None
    return Content.assemble(
        ("No model yet. ", "bold"),
        "Press ctrl+o, then either pull ",
        (name, "bold"),
        " (the one for this machine: p) or import a GGUF file you already have (i).\n"
        f"From a shell: r1chat models pull {name} · r1chat models import FILE",
    )
