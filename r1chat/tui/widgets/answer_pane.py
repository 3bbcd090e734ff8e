"""The answer pane: Markdown streamed with `MarkdownStream`, the boxed final answer
(math mode), notices, and a status line (reading the prompt, stopped, errors).

Tokens stream into one live `Markdown` segment. A long answer is cut into segments of
bounded size at safe places (`r1chat.tui.segments`); each finished segment is painted,
then flattened into the `FrozenText` above the live one (`r1chat.tui.widgets.frozen`).
So the widgets a batch of tokens touches, and the widgets every layout pass walks, stay
few however long the answer grows.
"""

from __future__ import annotations

import asyncio

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Markdown, Static
from textual.widgets._markdown import MarkdownStream

from r1chat.tui.segments import Segmenter, split
from r1chat.tui.widgets.frozen import FrozenText, capture


class AnswerSegment(Markdown):
    """One independent piece of an answer, as live Markdown widgets."""


class AnswerPane(Vertical):
    def __init__(self, text: str = "", *, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self._frozen = FrozenText()
        self._segments = [AnswerSegment(piece) for piece in split(text)] if text else []
        self._boxed = Static("", classes="boxed")
        self._notices = Static("", classes="notices")
        self._status = Static("", classes="turn-status")
        self._notice_lines: list[str] = []
        self._segmenter = Segmenter()
        self._stream: MarkdownStream | None = None
        self._parts: list[str] = [text] if text else []
        self._streaming = False
        self._freeze_lock = asyncio.Lock()
        self._freeze_scheduled = False
        self.set_class(not text, "-no-text")

    def compose(self) -> ComposeResult:
        yield self._frozen
        yield from self._segments
        yield self._boxed
        yield self._notices
        yield self._status

    def on_mount(self) -> None:
        if self._segments:
            self._schedule_freeze()

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
        """Segments still shown as Markdown widgets (the live one, unfrozen ones)."""
        return list(self._segments)

    @property
    def frozen(self) -> FrozenText:
        return self._frozen

    # -- streaming --------------------------------------------------------------------

    async def write(self, text: str) -> None:
        """Append Markdown (a batch of tokens); parsing happens in MarkdownStream."""
        if not text:
            return
        if not self._parts:
            self.remove_class("-no-text")
        self._streaming = True
        self._parts.append(text)
        for new, piece in self._segmenter.feed(text):
            await self._write_piece(new, piece)

    async def _write_piece(self, new: bool, piece: str) -> None:
        if new or not self._segments:
            await self._end_stream()
            segment = AnswerSegment()
            self._segments.append(segment)
            await self.mount(segment, before=self._boxed)
            self._schedule_freeze()
        if self._stream is None:
            self._stream = Markdown.get_stream(self._segments[-1])
        await self._stream.write(piece)

    async def _end_stream(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.stop()

    async def finish(self) -> None:
        """Flush what is held back and what the stream still holds; freeze it all."""
        if held := self._segmenter.flush():
            await self._write_piece(False, held)
        await self._end_stream()
        self._streaming = False
        self._schedule_freeze()

    # -- freezing ---------------------------------------------------------------------

    def _schedule_freeze(self) -> None:
        if not self._freeze_scheduled:
            self._freeze_scheduled = True
            self.call_after_refresh(self._freeze)

    async def _freeze(self) -> None:
        """Flatten every finished segment, in order, into the frozen text."""
        self._freeze_scheduled = False
        async with self._freeze_lock:
            done = []
            finished = self._segments[:-1] if self._streaming else list(self._segments)
            for segment in finished:
                lines = capture(segment) if segment.is_mounted else None
                if lines is None:
                    break
                self._frozen.add(lines, segment.source)
                done.append(segment)
            if not done:
                if finished:  # not laid out yet: try after the next refresh
                    self._schedule_freeze()
                return
            del self._segments[: len(done)]
            with self.app.batch_update():
                await self.remove_children(done)
            if len(done) < len(finished):
                self._schedule_freeze()

    async def on_frozen_text_stale(self, event: FrozenText.Stale) -> None:
        """New width or theme: render the frozen source as Markdown again, then refreeze."""
        event.stop()
        async with self._freeze_lock:
            sources = self._frozen.sources
            fresh = FrozenText()
            segments = [AnswerSegment(s) for s in sources]
            with self.app.batch_update():
                await self._frozen.remove()
                self._frozen = fresh
                await self.mount(fresh, before=self._segments[0] if self._segments else self._boxed)
                await self.mount_all(segments, after=fresh)
            self._segments[:0] = segments
        self._schedule_freeze()

    # -- the rest ---------------------------------------------------------------------

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
