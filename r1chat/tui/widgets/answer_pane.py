"""The answer pane: Markdown streamed with `MarkdownStream`, the boxed final answer
(math mode), notices, and a status line (reading the prompt, stopped, errors).

A long answer is a column of `Markdown` segments (see `r1chat.tui.segments`): tokens
stream into the last one only, so a batch costs the same at the end of a long answer as
at its start.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Markdown, Static
from textual.widgets._markdown import MarkdownStream

from r1chat.tui.segments import Segmenter, split


class AnswerSegment(Markdown):
    """One independent piece of a long answer."""


class AnswerPane(Vertical):
    def __init__(self, text: str = "", *, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self._segments = [AnswerSegment(piece) for piece in split(text)] if text else []
        self._boxed = Static("", classes="boxed")
        self._notices = Static("", classes="notices")
        self._status = Static("", classes="turn-status")
        self._notice_lines: list[str] = []
        self._segmenter = Segmenter()
        self._stream: MarkdownStream | None = None
        self._parts: list[str] = [text] if text else []
        self.set_class(not text, "-no-text")

    def compose(self) -> ComposeResult:
        yield from self._segments
        yield self._boxed
        yield self._notices
        yield self._status

    @property
    def text(self) -> str:
        """The answer's Markdown source so far."""
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    @property
    def has_text(self) -> bool:
        return bool(self._parts)

    @property
    def segments(self) -> list[AnswerSegment]:
        return list(self._segments)

    async def write(self, text: str) -> None:
        """Append Markdown (a batch of tokens); parsing happens in MarkdownStream."""
        if not text:
            return
        if not self._parts:
            self.remove_class("-no-text")
        self._parts.append(text)
        for new, piece in self._segmenter.feed(text):
            await self._write_piece(new, piece)

    async def _write_piece(self, new: bool, piece: str) -> None:
        if new or not self._segments:
            await self._end_stream()
            segment = AnswerSegment()
            self._segments.append(segment)
            await self.mount(segment, before=self._boxed)
        if self._stream is None:
            self._stream = Markdown.get_stream(self._segments[-1])
        await self._stream.write(piece)

    async def _end_stream(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.stop()

    async def finish(self) -> None:
        """Flush what is held back and what the stream still holds."""
        if held := self._segmenter.flush():
            await self._write_piece(False, held)
        await self._end_stream()

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
