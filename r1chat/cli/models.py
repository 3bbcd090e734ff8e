"""`r1chat models`: list, pull, remove, inspect and import GGUF models.

Top-level imports stay stdlib-only (`r1chat --help` imports every command module);
listing and `info` never import llama_cpp, textual or huggingface_hub.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from r1chat.catalog import Catalog
    from r1chat.download import PullProgress
    from r1chat.fit import Fit
    from r1chat.hardware import Hardware

EXIT_INTERRUPTED = 130
_EXAMPLES = """examples:
  r1chat models                          the list, sized for this machine at 8192 tokens
  r1chat models --ctx 32768              ... at 32k tokens of context
  r1chat models pull r1:14b              download (resumable, sha256-verified)
  r1chat models info r1:7b-q8_0          every field, local path, fit at several contexts
  r1chat models import ./x.gguf --name x register a file you have; then: r1chat -m x
  r1chat models path r1:7b               the file, for scripts
  r1chat models default r1:14b           what r1chat uses without -m
  r1chat models rm r1:7b --yes           delete it
"""


def register(sub: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--catalog",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="user catalog to merge over the built-in one "
        "(default: $R1CHAT_CATALOG or models.toml in the config folder)",
    )
    listing = argparse.ArgumentParser(add_help=False)
    listing.add_argument(
        "--ctx",
        type=int,
        metavar="N",
        default=argparse.SUPPRESS,
        help="context size to size models for (default: config or 8192)",
    )
    listing.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )

    p = sub.add_parser(
        "models",
        parents=[common, listing],
        help="list, download and manage models",
        description="The model catalog and the models on this machine. Without a "
        "subcommand: the list, with sizes and whether each fits this machine.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=run_list)
    msub = p.add_subparsers(dest="models_command", metavar="SUBCOMMAND", title="subcommands")

    q = msub.add_parser("list", parents=[common, listing], help="catalog and installed models")
    q.set_defaults(func=run_list)

    q = msub.add_parser("pull", parents=[common], help="download a model (resumable, verified)")
    q.add_argument("names", nargs="+", metavar="NAME", help="catalog name, e.g. r1:7b")
    q.set_defaults(func=run_pull)

    q = msub.add_parser("rm", parents=[common], help="delete a downloaded model")
    q.add_argument("names", nargs="+", metavar="NAME")
    q.add_argument("-y", "--yes", action="store_true", help="do not ask")
    q.set_defaults(func=run_rm)

    q = msub.add_parser("info", parents=[common, listing], help="everything about one model")
    q.add_argument("name", metavar="NAME", help="catalog name, imported name or GGUF path")
    q.set_defaults(func=run_info)

    q = msub.add_parser("import", parents=[common], help="register a GGUF already on disk")
    q.add_argument("file", metavar="FILE")
    q.add_argument("--name", help="name to use with -m (default: from the file name)")
    q.add_argument("--copy", action="store_true", help="copy it into the models folder")
    q.set_defaults(func=run_import)

    q = msub.add_parser("path", parents=[common], help="print a model's file path")
    q.add_argument("name", metavar="NAME")
    q.set_defaults(func=run_path)

    q = msub.add_parser("default", parents=[common], help="show or set the default model")
    q.add_argument("name", metavar="NAME", nargs="?")
    q.set_defaults(func=run_default)


# -- helpers ----------------------------------------------------------------------------


def _catalog(args: argparse.Namespace) -> Catalog:
    from r1chat.catalog import load_catalog

    return load_catalog(getattr(args, "catalog", None))


def _ctx(args: argparse.Namespace) -> int:
    from r1chat.errors import UsageError

    ctx = getattr(args, "ctx", None)
    if ctx is None:
        from r1chat.config import Config

        value = Config.load().get("model", "ctx", 8192)
        ctx = value if isinstance(value, int) and value > 0 else 8192
    if ctx <= 0:
        raise UsageError("--ctx must be positive")
    return int(ctx)


def _table(rows: list[list[str]], head: list[str]) -> str:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [head, *rows]
    ]
    return "\n".join(lines)


def _fit_dict(fit: Fit | None) -> dict[str, Any] | None:
    if fit is None:
        return None
    return {
        "verdict": fit.verdict.name.lower(),
        "label": fit.label,
        "gpu_layers": fit.gpu_layers,
        "layers": fit.units,
        "memory": fit.need,
        "kv_cache": fit.kv,
    }


# -- list ---------------------------------------------------------------------------------


def run_list(args: argparse.Namespace) -> int:
    from r1chat import hardware, store
    from r1chat.catalog import params_label
    from r1chat.fit import hardware_line, plan_entry, plan_file
    from r1chat.store import human

    catalog = _catalog(args)
    ctx = _ctx(args)
    hw = hardware.current()
    default = store.default_model(catalog=catalog)
    imported = store.load_index()
    rows, records = [], []
    for e in catalog.listed():
        fit = plan_entry(e, ctx, hw)
        st = store.state(e)
        status = "remote only" if e.remote else st.describe(e.size)
        rows.append(
            [
                ("* " if e.name == default else "  ") + e.name,
                params_label(e.params),
                e.quant or "-",
                human(e.size) if e.size else "-",
                fit.label if fit else "needs a server",
                "" if status == "-" else status,
            ]
        )
        records.append(
            {
                "name": e.name,
                "title": e.title,
                "quant": e.quant,
                "params": e.params,
                "size": e.size,
                "repo": e.repo,
                "files": list(e.files),
                "remote": e.remote,
                "installed": st.installed,
                "partial": st.partial,
                "bytes_on_disk": st.have,
                "default": e.name == default,
                "fit": _fit_dict(fit),
            }
        )
    imp_rows, imp_records = [], []
    for name, rec in sorted(imported.items()):
        fit, size = plan_file(rec.path, ctx, hw)
        imp_rows.append(
            [
                ("* " if name == default else "  ") + name,
                "-",
                "-",
                human(size or rec.size),
                fit.label if fit else "? (unreadable)",
                rec.path,
            ]
        )
        imp_records.append(
            {
                "name": name,
                "path": rec.path,
                "copied": rec.copied,
                "size": size or rec.size,
                "default": name == default,
                "fit": _fit_dict(fit),
            }
        )
    if getattr(args, "json", False):
        out = {
            "context": ctx,
            "hardware": _hw_dict(hw),
            "default": default,
            "models": records,
            "imported": imp_records,
        }
        print(json.dumps(out, indent=2))
        return 0
    print(hardware_line(hw) + f" · context {ctx:,}")
    print()
    head = ["  NAME", "PARAMS", "QUANT", "SIZE", f"FIT AT {ctx:,} TOKENS", "STATUS"]
    print(_table(rows, head))
    if imp_rows:
        print()
        print(_table(imp_rows, ["  IMPORTED", "", "", "SIZE", "FIT", "PATH"]))
    print()
    print(
        f"* default ({default}). Pull one with: r1chat models pull NAME; "
        "details: r1chat models info NAME"
    )
    return 0


def _hw_dict(hw: Hardware) -> dict[str, Any]:
    return {
        "ram_total": hw.ram_total,
        "ram_available": hw.ram_available,
        "cores": hw.cores,
        "backend": hw.backend,
        "offload": hw.offload,
        "gpus": [
            {"name": g.name, "total": g.total, "free": g.free, "unified": g.unified}
            for g in hw.gpus
        ],
    }


# -- info ---------------------------------------------------------------------------------


def run_info(args: argparse.Namespace) -> int:

    from r1chat import hardware, store
    from r1chat.catalog import params_label
    from r1chat.fit import CONTEXTS, Shape, plan, plan_entry
    from r1chat.store import human

    catalog = _catalog(args)
    hw = hardware.current()
    entry = catalog.get(args.name)
    if entry is None:
        path = store.resolve_model(args.name, catalog=catalog)
        facts = store.describe_path(path)
        shape = Shape.from_gguf(path)
        native = facts["context"] or 131072
        ctxs = sorted({c for c in CONTEXTS if c <= native} | {native})
        fits = [(c, plan(shape, c, hw)) for c in ctxs]
        if getattr(args, "json", False):
            facts["fit"] = {str(c): _fit_dict(f) for c, f in fits}
            print(json.dumps(facts, indent=2))
            return 0
        print(f"{args.name}  {facts['name']}")
        for key in ("path", "architecture", "layers", "heads", "kv_heads", "embedding", "context"):
            print(f"  {key:<13}{facts[key]}")
        print(f"  {'size':<13}{human(facts['size'])} ({facts['size']:,} bytes)")
        print(f"  {'KV cache':<13}{human(shape.kv_bytes_per_token)} per token (f16)")
        _print_fits(fits, hw)
        return 0

    st = store.state(entry)
    native = entry.context or 131072
    ctxs = sorted({c for c in CONTEXTS if c <= native} | {native})
    fits_e = [(c, plan_entry(entry, c, hw)) for c in ctxs]
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
            "fit": {str(c): _fit_dict(f) for c, f in fits_e},
        }
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
        lines.append(
            ("layers", f"{arch}{entry.layers} layers, {entry.kv_heads} KV heads x {entry.head_dim}")
        )
    if entry.kv_bytes_per_token:
        lines.append(("KV cache", f"{entry.kv_bytes_per_token // 1024} KiB per token (f16)"))
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
        print(f"  {k:<13}{v}")
    if not entry.remote:
        _print_fits([(c, f) for c, f in fits_e if f is not None], hw)
    return 0


def _print_fits(fits: list[tuple[int, Fit]], hw: Hardware) -> None:
    from r1chat.fit import hardware_line
    from r1chat.store import human

    print()
    print(f"  fit on this machine ({hardware_line(hw)}):")
    rows = [[f"{c:,}", human(f.kv), human(f.need), f.label] for c, f in fits]
    table = _table(rows, ["context", "KV cache", "memory", "verdict"])
    print("\n".join("    " + line for line in table.splitlines()))


# -- pull ---------------------------------------------------------------------------------


class _PlainProgress:
    """Progress lines for a log or a pipe (at most one every 2 s)."""

    def __init__(self) -> None:
        self.last = 0.0
        self.t0 = time.monotonic()
        self.base: int | None = None

    def __call__(self, p: PullProgress) -> None:
        from r1chat.store import human

        now = time.monotonic()
        if self.base is None:
            self.base = p.done
        if p.phase == "download" and now - self.last < 2 and p.done < p.total:
            return
        rate = (p.done - self.base) / max(now - self.t0, 1e-6)
        speed = f" at {human(rate)}/s" if rate > 0 else ""
        eta = f", ETA {_eta((p.total - p.done) / rate)}" if rate > 0 and p.done < p.total else ""
        pct = p.done * 100 // p.total if p.total else 100
        word = {"verify": "verifying", "done": "done"}.get(p.phase, "downloading")
        first = self.base is not None and self.last == 0.0
        resumed = f" (resuming from {human(p.resumed)})" if p.resumed and first else ""
        print(
            f"{p.name}: {word} {p.file} [{p.index}/{p.count}] {pct}% "
            f"{human(p.done)}/{human(p.total)}{speed}{eta}{resumed}",
            file=sys.stderr,
            flush=True,
        )
        self.last = now


def _eta(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class _RichProgress:
    def __init__(self, name: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self.task = self.progress.add_task(name, total=None)
        self.name = name
        self.progress.start()

    def __call__(self, p: PullProgress) -> None:
        desc = self.name + (f" [{p.index}/{p.count}]" if p.count > 1 else "")
        if p.phase == "verify":
            desc += " (verifying)"
        self.progress.update(self.task, total=p.total, completed=p.done, description=desc)

    def stop(self) -> None:
        self.progress.stop()


def run_pull(args: argparse.Namespace) -> int:
    import os

    from r1chat import download, store
    from r1chat.errors import R1ChatError
    from r1chat.store import human

    catalog = _catalog(args)
    entries = [catalog.require(n) for n in args.names]
    retries = int(os.environ.get("R1CHAT_PULL_RETRIES", download.RETRIES))
    for entry in entries:
        if entry.remote:
            raise R1ChatError(f"{entry.name} is too big to download and run here: {entry.note}")
        bar: Any = _RichProgress(entry.name) if sys.stderr.isatty() else _PlainProgress()
        try:
            result = download.pull(entry, progress=bar, retries=retries)
        except KeyboardInterrupt:
            if isinstance(bar, _RichProgress):
                bar.stop()
            have = store.state(entry).have
            print(
                f"interrupted: {human(have)} of {entry.name} kept; run `r1chat models pull "
                f"{entry.name}` to resume",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
        finally:
            if isinstance(bar, _RichProgress):
                bar.stop()
        if result.already:
            print(f"{entry.name} is already installed: {result.paths[0]}")
            continue
        took = result.transfer_seconds
        rate = result.downloaded / took if took else 0
        resumed = f", resumed after {human(result.resumed)}" if result.resumed else ""
        print(
            f"pulled {entry.name}: {result.paths[0]} ({human(result.downloaded)} in "
            f"{took:.3f} s, {human(rate)}/s{resumed}; {_checked(result.checks)})"
        )
    return 0


def _checked(checks: tuple[str, ...]) -> str:
    kinds = set(checks)
    if kinds <= {"sha256"}:
        return "sha256 verified"
    if "size" in kinds:
        return "size checked only: the server published no sha256"
    return " and ".join(sorted(kinds)) + " verified"


# -- rm, import, path, default ----------------------------------------------------------------


def run_rm(args: argparse.Namespace) -> int:
    from r1chat import store
    from r1chat.errors import UsageError
    from r1chat.store import human

    catalog = _catalog(args)
    for name in args.names:
        removal = store.plan_removal(name, catalog=catalog)
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


def run_import(args: argparse.Namespace) -> int:
    from r1chat import store
    from r1chat.store import human

    rec = store.import_model(args.file, name=args.name, copy=args.copy, catalog=_catalog(args))
    how = "copied to" if rec.copied else "at"
    print(f"imported {rec.name} ({human(rec.size)}) {how} {rec.path}; use it with -m {rec.name}")
    return 0


def run_path(args: argparse.Namespace) -> int:
    from r1chat import store

    print(store.resolve_model(args.name, catalog=_catalog(args)))
    return 0


def run_default(args: argparse.Namespace) -> int:
    from r1chat import store

    catalog = _catalog(args)
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
