"""An append-only, word-wrapped text view for a streaming reasoning trace.

A Line API widget: it keeps wrapped rows (see `r1chat.tui.wrap`) and paints only the rows
on screen, so a 20,000-token trace costs no more per token than a short one. It scrolls
inside its own box (max-height from CSS) and follows new text unless scrolled up.
"""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.selection import Selection
from textual.strip import Strip

from r1chat.core.printable import printable
from r1chat.tui.wrap import WrappedText


class ReasoningLog(ScrollView, can_focus=True):
    """Focused, it scrolls with the keyboard; `r` asks for the reader view."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "scroll_up", "Up", show=False),
        Binding("down", "scroll_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "scroll_home", "Top", show=False),
        Binding("end", "scroll_end", "Bottom", show=False),
        Binding("r", "read", "Read all"),
    ]

    class ReadRequested(Message):
        """Open this trace in the reader view (with search)."""

        def __init__(self, log: ReasoningLog) -> None:
            super().__init__()
            self.log = log

    COMPONENT_CLASSES: ClassVar[set[str]] = {"reasoning-log--match"}
    DEFAULT_CSS = """
    ReasoningLog > .reasoning-log--match {
        background: $warning 40%;
        text-style: bold not italic;
    }
    ReasoningLog {
        height: auto;
        max-height: 16;
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-gutter: stable;
        scrollbar-size-vertical: 1;
        scrollbar-size-horizontal: 0;
    }
    """

    def __init__(self, text: str = "", *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self._wrapped = WrappedText(80)
        self._cache: dict[int, Strip] = {}
        self._highlight = ""  # a search term shown highlighted (the reader view)
        if text:
            self._wrapped.append(printable(text))

    @property
    def text(self) -> str:
        return self._wrapped.text

    @property
    def row_count(self) -> int:
        return len(self._wrapped)

    def _fit(self, width: int) -> None:
        if width > 0 and width != self._wrapped.width:
            self._wrapped.set_width(width)
            self._cache.clear()
            self.virtual_size = Size(width, len(self._wrapped))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        self._fit(width - self._gutter_width())
        return len(self._wrapped)

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return container.width

    def _gutter_width(self) -> int:
        return (
            self.styles.scrollbar_size_vertical if self.styles.scrollbar_gutter == "stable" else 0
        )

    def on_mount(self) -> None:
        # Follow new text (Textual's anchor) until the user scrolls up; back at the
        # bottom, it follows again.
        self.anchor()

    def on_resize(self) -> None:
        self._fit(self.scrollable_content_region.width)

    @property
    def following(self) -> bool:
        return self.is_anchored and not self._anchor_released

    def append(self, text: str) -> None:
        """Add text at the end (the view follows it unless scrolled up), without terminal
        control sequences."""
        text = printable(text)
        if not text:
            return
        before = len(self._wrapped)
        first = self._wrapped.append(text)
        for y in range(first, before + 1):
            self._cache.pop(y, None)
        rows = len(self._wrapped)
        size = Size(self._wrapped.width, rows)
        height = self.size.height
        if 0 < height < before and rows != before:
            # Already scrolling inside its max height: the box keeps its size, so skip
            # the layout pass (and the full repaint it brings); move the scrollbar and,
            # when following, the view (the layout pass would do that for the anchor).
            self.set_reactive(ScrollView.virtual_size, size)
            self._scroll_update(size)
            if self.following:
                end = self.max_scroll_y
                self.set_reactive(ScrollView.scroll_target_y, end)
                self.scroll_y = end
                self.vertical_scrollbar.position = end
        else:
            self.virtual_size = size  # a relayout, if the rows changed
        self.refresh_lines(first, rows - first)

    def action_read(self) -> None:
        self.post_message(self.ReadRequested(self))

    def find(self, query: str) -> list[int]:
        """The display rows that contain `query` (any case); it is highlighted in them."""
        self._highlight = query.lower()
        self._cache.clear()
        self.refresh()
        if not self._highlight:
            return []
        rows = (self._wrapped.row(i) for i in range(len(self._wrapped)))
        return [i for i, row in enumerate(rows) if self._highlight in row.lower()]

    def render_line(self, y: int) -> Strip:
        self._fit(self.scrollable_content_region.width)
        index = y + self.scroll_offset.y
        width = self.scrollable_content_region.width
        style = self.rich_style
        if index >= len(self._wrapped) or self.text_selection is not None:
            if index >= len(self._wrapped):
                return Strip.blank(width, style)
            return self._selected_line(index, width)
        strip = self._cache.get(index)
        if strip is None:
            row = self._wrapped.row(index)
            if self._highlight and self._highlight in row.lower():
                strip = self._marked(row, width)
            else:
                strip = Strip([Segment(row, style)]).extend_cell_length(width, style)
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[index] = strip
        return strip.apply_offsets(0, index)

    def _marked(self, row: str, width: int) -> Strip:
        from rich.text import Text

        line = Text(row, style=self.rich_style, no_wrap=True)
        mark = self.get_component_rich_style("reasoning-log--match")
        term, low, at = self._highlight, row.lower(), 0
        while (at := low.find(term, at)) >= 0:
            line.stylize(mark, at, at + len(term))
            at += len(term)
        return Strip(list(line.render(self.app.console))).extend_cell_length(width, self.rich_style)

    def _selected_line(self, index: int, width: int) -> Strip:
        from rich.text import Text

        line = Text(self._wrapped.row(index), style=self.rich_style, no_wrap=True)
        selection = self.text_selection
        if selection is not None and (span := selection.get_span(index)) is not None:
            start, end = span
            if end == -1:
                end = len(line)
            line.stylize(self.screen.get_component_rich_style("screen--selection"), start, end)
        segments = list(line.render(self.app.console))
        return Strip(segments).extend_cell_length(width, self.rich_style).apply_offsets(0, index)

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        rows = [self._wrapped.row(i) for i in range(len(self._wrapped))]
        return selection.extract("\n".join(rows)), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self._cache.clear()
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()
