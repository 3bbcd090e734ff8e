"""`r1chat models info NAME`: every fact about one model, and how it fits at each context."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from r1chat.cli.models.common import catalog_of, kv_of, table
from r1chat.core.errors import UsageError
from r1chat.core.printable import one_line

if TYPE_CHECKING:
    from r1chat.models.fit import Fit, Shape
    from r1chat.models.hardware import Hardware


def run_info(args: argparse.Namespace) -> int:

    from r1chat.core.units import human
    from r1chat.models import hardware, store
    from r1chat.models.catalog import params_label
    from r1chat.models.fit import CONTEXTS, Shape, plan, plan_entry
    from r1chat.models.listing import fit_record

    catalog = catalog_of(args)
    hw = hardware.current()
    kv = kv_of(args)
    slots = args.parallel
    if slots < 1:
        raise UsageError(f"--parallel must be at least 1, not {slots}")
    entry = catalog.get(args.name)
    if entry is None:
        path = store.resolve_model(args.name, catalog=catalog)
        facts = store.describe_path(path)
        shape = Shape.from_gguf(path)
        native = facts["context"] or 131072
        ctxs = sorted({c for c in CONTEXTS if c <= native} | {native})
        fits = [(c, plan(shape.with_kv(kv), c * slots, hw)) for c in ctxs]
        if getattr(args, "json", False):
            facts["fit"] = {str(c): fit_record(f) for c, f in fits}
            facts["slots"] = slots
            facts["kv_type"], facts["context_by_kv_type"] = kv, _by_kv(shape, hw, native)
            print(json.dumps(facts, indent=2))
            return 0
        print(f"{one_line(args.name)}  {one_line(facts['name'])}")
        for key in ("path", "architecture", "layers", "heads", "kv_heads", "embedding", "context"):
            print(f"  {key:<13}{one_line(str(facts[key]))}")
        print(f"  {'prompts':<13}{facts['prompt_format']}")
        print(f"  {'size':<13}{human(facts['size'])} ({facts['size']:,} bytes)")
        print(f"  {'KV cache':<13}{human(shape.kv_bytes_per_token)} per token (f16)")
        _print_fits(fits, hw, kv, slots)
        _print_kv_table(shape, hw, native)
        return 0

    st = store.state(entry)
    native = entry.context or 131072
    ctxs = sorted({c for c in CONTEXTS if c <= native} | {native})
    fits_e = [(c, plan_entry(entry, c * slots, hw, kv)) for c in ctxs]
    local = [str(p) for p in store.entry_paths(entry)] if not entry.remote else []
    if getattr(args, "json", False):
        data: dict[str, Any] = {
            "name": entry.name,
            "variant": entry.variant,
            "title": entry.title,
            "quant": entry.quant,
            "repo": entry.repo,
            "revision": entry.revision,
            "subfolder": entry.subfolder,
            "files": list(entry.files),
            "sha256": list(entry.sha256),
            "size": entry.size,
            "params": entry.params,
            "arch": entry.arch,
            "layers": entry.layers,
            "kv_heads": entry.kv_heads,
            "head_dim": entry.head_dim,
            "kv_bytes_per_token": entry.kv_bytes_per_token,
            "context": entry.context,
            "license": entry.license,
            "remote": entry.remote,
            "note": entry.note,
            "source": entry.source,
            "installed": st.installed,
            "partial": st.partial,
            "bytes_on_disk": st.have,
            "paths": local,
            "fit": {str(c): fit_record(f) for c, f in fits_e},
            "slots": slots,
            "hub": entry.hub,
            "shape_estimated": entry.estimated,
            "prompt_format": _prompt_format(local[0]) if st.installed else None,
            "kv_type": kv,
        }
        if not entry.remote and entry.layers:
            data["context_by_kv_type"] = _by_kv(Shape.from_entry(entry), hw, native)
        print(json.dumps(data, indent=2))
        return 0
    quant = f" ({entry.quant})" if entry.quant else ""
    print(f"{entry.name}  {entry.title}{quant}")
    lines: list[tuple[str, str]] = []
    if entry.remote:
        lines.append(("runs on", "a remote server only (OpenAI-compatible)"))
    else:
        lines += [
            ("repo", f"{entry.repo} @ {entry.revision}"),
            ("files", ", ".join(entry.repo_paths)),
            ("size", f"{human(entry.size)} ({entry.size:,} bytes)"),
            (
                "sha256",
                ", ".join(s or "from the Hub's LFS metadata at download" for s in entry.sha256),
            ),
        ]
    lines += [
        ("params", params_label(entry.params) + (f" ({entry.params:,})" if entry.params else ""))
    ]
    if entry.layers:
        arch = f"{entry.arch}, " if entry.arch else ""
        guess = " (estimated from a like model until a file is pulled)" if entry.estimated else ""
        dims = f"{arch}{entry.layers} layers, {entry.kv_heads} KV heads x {entry.head_dim}"
        lines.append(("layers", dims + guess))
    if entry.kv_bytes_per_token:
        lines.append(("KV cache", f"{human(entry.kv_bytes_per_token)} per token (f16)"))
    lines += [
        ("context", f"{entry.context:,} tokens (native)" if entry.context else "?"),
        ("license", entry.license or "?"),
    ]
    others = [e.name for e in catalog.listed() if e.model == entry.model and e.name != entry.name]
    if others:
        lines.append(("other quants", ", ".join(others)))
    if not entry.remote:
        if st.installed:
            more = f" (+{len(local) - 1} more)" if len(local) > 1 else ""
            lines.append(("installed", f"{local[0]}{more}, {human(st.have)} on disk"))
            lines.append(("prompts", _prompt_format(local[0])))
        elif st.partial:
            lines.append(
                (
                    "status",
                    f"partial download, {human(st.have)} on disk; resume with: "
                    f"r1chat models pull {entry.name}",
                )
            )
        else:
            lines.append(("status", f"not installed; run: r1chat models pull {entry.name}"))
    if entry.note:
        lines.append(("note", entry.note))
    lines.append(("catalog", entry.source))
    for k, v in lines:
        print(f"  {k:<13}{one_line(str(v))}")
    if not entry.remote:
        _print_fits([(c, f) for c, f in fits_e if f is not None], hw, kv, slots)
        if entry.layers:
            _print_kv_table(Shape.from_entry(entry), hw, native)
    return 0


def _prompt_format(path: str) -> str:
    from r1chat.core.errors import R1ChatError
    from r1chat.models.gguf import read_gguf

    try:
        return read_gguf(path).prompt_format
    except R1ChatError as e:
        return f"? ({e})"


def _by_kv(shape: Shape, hw: Hardware, native: int) -> dict[str, dict[str, int]]:
    """For each KV cache type: bytes per token, and the most context that fits entirely on
    the GPU and at all (multiples of 256, up to the model's native context)."""
    from r1chat.models.fit import KV_TYPES, max_context

    out = {}
    for kv in KV_TYPES:
        s = shape.with_kv(kv)
        out[kv] = {
            "bytes_per_token": s.kv_bytes_per_token,
            "max_on_gpu": max_context(s, hw, native, on_gpu=True) if hw.gpus else 0,
            "max": max_context(s, hw, native, on_gpu=False),
        }
    return out


def _print_kv_table(shape: Shape, hw: Hardware, native: int) -> None:
    from r1chat.core.units import human

    rows = []
    for kv, r in _by_kv(shape, hw, native).items():
        gpu = f"{r['max_on_gpu']:,}" if hw.gpus else "-"
        rows.append([kv, human(r["bytes_per_token"]), gpu, f"{r['max']:,}" if r["max"] else "none"])
    print()
    print(f"  context that fits, by KV cache type (--kv-type; up to {native:,}):")
    text = table(rows, ["KV type", "per token", "all on GPU", "at all"])
    print("\n".join("    " + line for line in text.splitlines()))


def _print_fits(fits: list[tuple[int, Fit]], hw: Hardware, kv: str = "f16", slots: int = 1) -> None:
    from r1chat.core.units import human
    from r1chat.models.listing import hardware_line

    print()
    cache = f", KV {kv}" if kv != "f16" else ""
    each = f", {slots} replies at once, a KV cache each" if slots > 1 else ""
    print(f"  fit on this machine ({hardware_line(hw)}{cache}{each}):")
    rows = [[f"{c:,}", human(f.kv), human(f.need), f.label] for c, f in fits]
    context = "context each" if slots > 1 else "context"
    text = table(rows, [context, "KV cache", "memory", "verdict"])
    print("\n".join("    " + line for line in text.splitlines()))
