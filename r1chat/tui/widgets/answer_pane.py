"""The answer pane: Markdown streamed with `MarkdownStream`, the boxed final answer
(math mode), and a status line (reading the prompt, stopped, notices, errors)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Markdown, Static
from textual.widgets._markdown import MarkdownStream


class AnswerPane(Vertical):
    def __init__(self, text: str = "", *, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self._markdown = Markdown(text or None, classes="answer")
        self._boxed = Static("", classes="boxed")
        self._notices = Static("", classes="notices")
        self._status = Static("", classes="turn-status")
        self._notice_lines: list[str] = []
        self._stream: MarkdownStream | None = None
        self._has_text = bool(text)
        self.set_class(not text, "-no-text")

    def compose(self) -> ComposeResult:
        yield self._markdown
        yield self._boxed
        yield self._notices
        yield self._status

    @property
    def markdown(self) -> Markdown:
        return self._markdown

    @property
    def has_text(self) -> bool:
        return self._has_text

    async def write(self, text: str) -> None:
        """Append Markdown (a batch of tokens); parsing happens in MarkdownStream."""
        if not text:
            return
        if not self._has_text:
            self._has_text = True
            self.remove_class("-no-text")
        if self._stream is None:
            self._stream = Markdown.get_stream(self._markdown)
        await self._stream.write(text)

    async def finish(self) -> None:
        """Flush what the stream still holds."""
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.stop()

    def show_boxed(self, value: str | None) -> None:
        if value:
            self._boxed.update(Content.assemble(("Final answer  ", "bold"), (value, "bold")))
            self.add_class("-boxed")

    def set_status(self, text: str, kind: str = "info") -> None:
        """One line under the answer: `kind` is info, stopped, warning or error."""
        self._status.update(Content(text))
        for k in ("info", "stopped", "warning", "error"):
            self._status.set_class(k == kind, f"-{k}")
        self._status.set_class(bool(text), "-shown")

    @property
    def status(self) -> str:
        return str(self._status.content)

    def add_notice(self, text: str) -> None:
        self._notice_lines.append(f"⚠ {text}")
        self._notices.update(Content("\n".join(self._notice_lines)))
        self._notices.add_class("-shown")
