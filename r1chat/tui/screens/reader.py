"""The reader view: one turn's whole reasoning on the full screen, with search.

Opened with `r` on a focused reasoning pane (or ctrl+l for the last reply). Typing in the
search line highlights the term; enter goes to the next row that has it (shift+enter or
up, the previous); esc closes.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Static

from r1chat.tui.widgets.reasoning_log import ReasoningLog


class ReaderScreen(ModalScreen[None]):
    DEFAULT_CSS = Path(__file__).with_name("reader.tcss").read_text(encoding="utf-8")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("enter", "next", "Next match", priority=True),
        Binding("shift+enter,up", "previous", "Previous match"),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
    ]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self._title, self._text = title, text
        self.matches: list[int] = []
        self.current = -1

    def compose(self) -> ComposeResult:
        with Vertical(id="reader-box") as box:
            box.border_title = self._title
            yield ReasoningLog(self._text, id="reader-text")
            yield Input(placeholder="search the reasoning", id="reader-search")
            yield Static("", id="reader-count")
        yield Footer()

    @property
    def log_view(self) -> ReasoningLog:
        return self.query_one("#reader-text", ReasoningLog)

    def on_mount(self) -> None:
        self.log_view.release_anchor()
        self.log_view.scroll_home(animate=False)
        self.query_one("#reader-search", Input).focus()

    @on(Input.Changed, "#reader-search")
    def _search(self, event: Input.Changed) -> None:
        self.matches = self.log_view.find(event.value)
        self.current = -1
        if self.matches:
            self.action_next()
        else:
            self._count()

    def action_next(self) -> None:
        self._go(1)

    def action_previous(self) -> None:
        self._go(-1)

    def action_page(self, direction: int) -> None:
        view = self.log_view
        view.scroll_to(y=view.scroll_y + direction * max(1, view.size.height - 1), animate=False)

    def action_close(self) -> None:
        self.dismiss(None)

    def _go(self, step: int) -> None:
        if self.matches:
            self.current = (self.current + step) % len(self.matches)
            row = self.matches[self.current]
            view = self.log_view
            view.scroll_to(y=max(0, row - view.size.height // 3), animate=False)
        self._count()

    def _count(self) -> None:
        term = self.query_one("#reader-search", Input).value
        if not term:
            text = f"{self.log_view.row_count:,} lines · type to search"
        elif not self.matches:
            text = "no match"
        else:
            text = f"{self.current + 1} of {len(self.matches)} lines with it · enter: next"
        self.query_one("#reader-count", Static).update(Content(text))
