"""The model manager's pull: the download on a thread worker, and the panel that shows it
(title, progress bar, bytes, speed and ETA).

`download.pull`'s progress callback (at most every 0.1 s) posts to the panel from the
download thread, so the download never waits for the UI. When the pull ends (done,
failed or cancelled, the partial file kept) the panel posts `PullPanel.Ended` to its
screen, which calls `done()` once it has shown it. Errors are `R1ChatError`s, carried
as one line, never tracebacks.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import ProgressBar, Static

from r1chat.core.errors import R1ChatError
from r1chat.core.units import Meter
from r1chat.tui.model_text import progress_text

if TYPE_CHECKING:
    from r1chat.models.catalog import Entry
    from r1chat.models.download import PullProgress, PullResult

log = logging.getLogger("r1chat.tui")


@dataclass
class Pull:
    """The pull running: what it fetches, how to stop it, and how far it got."""

    entry: Entry
    cancel: threading.Event = field(default_factory=threading.Event)
    meter: Meter = field(default_factory=Meter)
    last: PullProgress | None = None

    @property
    def percent(self) -> int:
        p = self.last
        return min(99, p.done * 100 // p.total) if p is not None and p.total else 0


class PullPanel(Vertical):
    """One pull at a time; `current` is the one running."""

    class Progressed(Message):
        """Progress from the download thread (handled by the panel)."""

        def __init__(self, progress: PullProgress) -> None:
            super().__init__()
            self.progress = progress

    class Changed(Message):
        """The running pull of `name` progressed (its row shows how far)."""

        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    class Ended(Message):
        """A pull finished, failed or was cancelled."""

        def __init__(
            self,
            entry: Entry,
            result: PullResult | None = None,
            error: str | None = None,
            cancelled: bool = False,
        ) -> None:
            super().__init__()
            self.entry, self.result, self.error, self.cancelled = entry, result, error, cancelled

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.current: Pull | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="models-pull-title")
        with Horizontal(id="models-pull-line"):
            yield ProgressBar(id="models-bar", show_eta=False)
            yield Static("", id="models-pull-figures")

    def _show(self, title: str, figures: str, total: int | None, done: int) -> None:
        self.query_one("#models-pull-title", Static).update(Text(f"{title} · esc or c cancels"))
        self.query_one("#models-bar", ProgressBar).update(total=total or None, progress=done)
        self.query_one("#models-pull-figures", Static).update(Text(figures))

    def start(self, entry: Entry, size: int | None, have: int) -> None:
        """Pull `entry` (`have` bytes of its `size` are here already)."""
        self.current = Pull(entry)
        self._show(f"Pulling {entry.name}", "connecting…", size, have)
        self._download(self.current)

    def cancel(self) -> None:
        """Stop the pull; the partial file stays for the next pull to resume."""
        if self.current is not None and not self.current.cancel.is_set():
            self.current.cancel.set()
            self.query_one("#models-pull-figures", Static).update(Text("cancelling…"))

    @work(thread=True, exit_on_error=False, group="pull")
    def _download(self, pull: Pull) -> None:
        from r1chat.models import download

        def progress(p: PullProgress) -> None:
            self.post_message(self.Progressed(p))  # thread-safe, never waits for the UI

        post = self.post_message
        try:
            result = download.pull(pull.entry, progress=progress, cancel=pull.cancel)
        except download.PullCancelled:
            post(self.Ended(pull.entry, cancelled=True))
        except R1ChatError as e:
            post(self.Ended(pull.entry, error=str(e)))
        except Exception as e:  # a bug or an odd OS error: one line, logged
            log.exception("pull of %s failed", pull.entry.name)
            post(self.Ended(pull.entry, error=f"pull of {pull.entry.name} failed: {e}"))
        else:
            post(self.Ended(pull.entry, result=result))

    @on(Progressed)
    def _progressed(self, message: Progressed) -> None:
        message.stop()
        pull, p = self.current, message.progress
        if pull is None or p.name != pull.entry.name:
            return
        pull.last = p
        pull.meter.add(p.done)
        title = f"Pulling {p.name}" + (f" [{p.index}/{p.count}]" if p.count > 1 else "")
        self._show(f"{title} · {p.file}", progress_text(p, pull.meter), p.total, p.done)
        self.post_message(self.Changed(p.name))

    def done(self) -> None:
        """The screen has taken in `Ended`: no pull runs."""
        self.current = None
