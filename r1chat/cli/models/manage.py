"""`r1chat models rm | import | path | default`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from r1chat.cli.models.common import catalog_of
from r1chat.core.errors import R1ChatError


def run_rm(args: argparse.Namespace) -> int:
    from r1chat.core.errors import UsageError
    from r1chat.core.units import human
    from r1chat.models import store

    catalog = catalog_of(args)
    for name in args.names:
        removal = store.plan_removal(name, catalog=catalog)
        if not args.force and _in_use(name, catalog):
            raise R1ChatError(
                f"{removal.name} is in use: a running r1chat (serve, chat or ask) has it "
                "loaded; stop that first, or add --force"
            )
        if removal.forget_only:
            what = f"forget imported model {removal.name} (its file stays)"
        else:
            what = f"delete {removal.name}: {len(removal.paths)} file(s), {human(removal.bytes)}"
        if not args.yes:
            if not sys.stdin.isatty():
                raise UsageError(f"would {what}; add --yes to confirm (stdin is not a terminal)")
            answer = input(f"{what[0].upper() + what[1:]}? [y/N] ").strip().lower()
            if answer not in ("y", "yes"):
                print("kept", file=sys.stderr)
                continue
        removal = store.remove_model(name, catalog=catalog)
        freed = f", freed {human(removal.bytes)}" if removal.bytes else ""
        print(f"removed {removal.name}{freed}")
    return 0


def _in_use(name: str, catalog: Any) -> bool:
    from r1chat.models import inuse, store

    try:
        path = store.resolve_model(name, catalog=catalog)
    except R1ChatError:  # (a partial download: nothing runs it)
        return False
    return inuse.in_use(path)


def run_import(args: argparse.Namespace) -> int:
    from r1chat.core.units import human
    from r1chat.models import store

    rec = store.import_model(args.file, name=args.name, copy=args.copy, catalog=catalog_of(args))
    how = "copied to" if rec.copied else "at"
    print(f"imported {rec.name} ({human(rec.size)}) {how} {rec.path}; use it with -m {rec.name}")
    return 0


def run_path(args: argparse.Namespace) -> int:
    from r1chat.models import store

    print(store.resolve_model(args.name, catalog=catalog_of(args)))
    return 0


def run_default(args: argparse.Namespace) -> int:
    from r1chat.models import store

    catalog = catalog_of(args)
    if args.name is None:
        print(store.default_model(catalog=catalog))
        return 0
    value = store.set_default_model(args.name, catalog=catalog)
    entry = catalog.get(value)
    note = ""
    if entry is not None and not entry.remote and not store.is_installed(entry):
        note = f" (not installed yet: r1chat models pull {entry.name})"
    print(f"default model: {value}{note}")
    return 0
