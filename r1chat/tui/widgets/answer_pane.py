"""The answer pane: the streamed Markdown answer (`MarkdownView`), the boxed final answer
(math mode), notices, and a status line (reading the prompt, stopped, errors)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static

from r1chat.core.printable import printable
from r1chat.tui.widgets.markdown_view import MarkdownView


def versions_mark(version: tuple[int, int]) -> str:
    """`‹ 2/3 ›`: which version of a turn is shown, of how many."""
    return f"‹ {version[0]}/{version[1]} ›" if version[1] > 1 else ""


class AnswerPane(Vertical):
    def __init__(self, text: str = "", *, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self.markdown = MarkdownView(text, classes="answer")
        self._boxed = Static("", classes="boxed")
        self._notices = Static("", classes="notices")
        self._status = Static("", classes="turn-status")
        self._version = Static("", classes="turn-version")
        self._notice_lines: list[str] = []
        self.set_class(not text, "-no-text")

    def compose(self) -> ComposeResult:
        yield self.markdown
        yield self._boxed
        yield self._notices
        yield self._status
        yield self._version

    @property
    def text(self) -> str:
        """The answer's Markdown source so far."""
        return self.markdown.source

    @property
    def has_text(self) -> bool:
        return bool(self.markdown.source)

    def write(self, text: str) -> None:
        """Append a batch of answer tokens."""
        if text and not self.has_text:
            self.remove_class("-no-text")
        self.markdown.append(text)

    def finish(self) -> None:
        self.markdown.finish()

    def show_boxed(self, value: str | None) -> None:
        if value:
            answer = printable(value)
            self._boxed.update(Content.assemble(("Final answer  ", "bold"), (answer, "bold")))
            self.add_class("-boxed")

    def set_status(self, text: str, kind: str = "info") -> None:
        """One line under the answer: `kind` is info, stopped, warning or error."""
        self._status.update(Content(text))
        for k in ("info", "stopped", "warning", "error"):
            self._status.set_class(k == kind, f"-{k}")
        self._status.set_class(bool(text), "-shown")

    def set_version(self, version: tuple[int, int]) -> None:
        """`‹ 2/3 ›` under a reply regenerated (shown only when there are several)."""
        self._version.update(Content(versions_mark(version)))
        self._version.set_class(version[1] > 1, "-shown")

    @property
    def status(self) -> str:
        return str(self._status.content)

    @property
    def has_notices(self) -> bool:
        return bool(self._notice_lines)

    def add_notice(self, text: str) -> None:
        self._notice_lines.append(f"⚠ {printable(text)}")
        self._notices.update(Content("\n".join(self._notice_lines)))
        self._notices.add_class("-shown")
