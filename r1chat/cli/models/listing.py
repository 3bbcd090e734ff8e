"""`r1chat models` (or `models list`): the table, sized for this machine, or `--json`."""

from __future__ import annotations

import argparse
import json

from r1chat.cli.models.common import catalog_of, ctx_of, kv_of, table
from r1chat.core.printable import one_line


def run_list(args: argparse.Namespace) -> int:
    from r1chat.core.units import human
    from r1chat.models import hardware, store
    from r1chat.models.listing import hardware_line, model_rows, record

    catalog = catalog_of(args)
    ctx, kv = ctx_of(args), kv_of(args)
    hw = hardware.current()
    default = store.default_model(catalog=catalog)
    rows = model_rows(catalog, hw, ctx, default=default, kv_type=kv)
    if getattr(args, "json", False):
        out = {
            "context": ctx,
            "kv_type": kv,
            "hardware": hw.to_dict(),
            "default": default,
            "models": [record(r) for r in rows if r.entry is not None],
            "imported": [record(r) for r in rows if r.entry is None],
        }
        print(json.dumps(out, indent=2))
        return 0

    def mark(default: bool) -> str:
        return "* " if default else "  "

    listed = [
        [
            mark(r.default) + r.name,
            r.params,
            r.quant,
            human(r.size) if r.size else "-",
            r.fit_label,
            r.status,
        ]
        for r in rows
        if r.entry is not None
    ]
    imported = [
        [
            mark(r.default) + r.name,
            r.params or "-",
            r.quant or "-",
            human(r.size),
            r.fit_label,
            one_line(r.path),
        ]
        for r in rows
        if r.entry is None
    ]
    print(hardware_line(hw) + f" · context {ctx:,}" + (f" · KV {kv}" if kv != "f16" else ""))
    print()
    head = ["  NAME", "PARAMS", "QUANT", "SIZE", f"FIT AT {ctx:,} TOKENS", "STATUS"]
    print(table(listed, head))
    if imported:
        print()
        print(table(imported, ["  IMPORTED", "PARAMS", "QUANT", "SIZE", "FIT", "PATH"]))
    print()
    print(
        f"* default ({one_line(default)}). Pull one with: r1chat models pull NAME; "
        "details: r1chat models info NAME"
    )
    return 0
