"""`r1chat models pull NAME`: download with progress on stderr, resumable and verified."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

from r1chat.cli.models.common import catalog_of, ctx_of
from r1chat.core import units

if TYPE_CHECKING:
    from r1chat.models.catalog import Entry
    from r1chat.models.download import PullProgress

EXIT_INTERRUPTED = 130


class _PlainProgress:
    """Progress lines for a log or a pipe (at most one every 2 s)."""

    def __init__(self) -> None:
        self.last = 0.0
        self.t0 = time.monotonic()
        self.base: int | None = None

    def __call__(self, p: PullProgress) -> None:
        now = time.monotonic()
        if self.base is None:
            self.base = p.done
        if p.phase == "download" and now - self.last < 2 and p.done < p.total:
            return
        rate = (p.done - self.base) / max(now - self.t0, 1e-6)
        speed = f" at {units.speed(rate)}" if rate > 0 else ""
        left = (p.total - p.done) / rate if rate > 0 and p.done < p.total else None
        eta = f", ETA {units.clock(left)}" if left is not None else ""
        pct = p.done * 100 // p.total if p.total else 100
        word = {"verify": "verifying", "done": "done"}.get(p.phase, "downloading")
        first = self.base is not None and self.last == 0.0
        resumed = f" (resuming from {units.human(p.resumed)})" if p.resumed and first else ""
        print(
            f"{p.name}: {word} {p.file} [{p.index}/{p.count}] {pct}% "
            f"{units.human(p.done)}/{units.human(p.total)}{speed}{eta}{resumed}",
            file=sys.stderr,
            flush=True,
        )
        self.last = now


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
    from r1chat.core.errors import R1ChatError
    from r1chat.models import download, store

    entries = [_entry(n, args) for n in args.names]
    for entry in entries:
        if entry.remote:
            raise R1ChatError(f"{entry.name} is too big to download and run here: {entry.note}")
        bar: Any = _RichProgress(entry.name) if sys.stderr.isatty() else _PlainProgress()
        try:
            result = download.pull(entry, progress=bar)
        except KeyboardInterrupt:
            if isinstance(bar, _RichProgress):
                bar.stop()
            have = store.state(entry).have
            print(
                f"interrupted: {units.human(have)} of {entry.name} kept; run `r1chat models pull "
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
        resumed = f", resumed after {units.human(result.resumed)}" if result.resumed else ""
        print(
            f"pulled {entry.name}: {result.paths[0]} ({units.human(result.downloaded)} in "
            f"{took:.3f} s, {units.speed(rate)}{resumed}; {_checked(result.checks)})"
        )
    return 0


def _entry(name: str, args: argparse.Namespace) -> Entry:
    """The catalog entry to pull: a catalog name, or a Hub repo's (`OWNER/REPO:QUANT`,
    `OWNER/REPO`: the quantization that fits best), recorded as pulled from the Hub."""
    from r1chat.models import hub_repos

    entry, why = hub_repos.entry_to_pull(name, lambda: catalog_of(args), ctx_of(args))
    if why:
        print(why, file=sys.stderr)
    return entry


def _checked(checks: tuple[str, ...]) -> str:
    kinds = set(checks)
    if kinds <= {"sha256"}:
        return "sha256 verified"
    if "size" in kinds:
        return "size checked only: the server published no sha256"
    return " and ".join(sorted(kinds)) + " verified"
