"""Finished Markdown, flattened into one widget.

Textual lays out every widget of a scrolling transcript on each layout pass, on screen
or not, and a Markdown document is many widgets (a paragraph, a list item, a table cell
each). A long answer would make every batch of tokens cost more than the last. So once
a segment of an answer is finished and painted, `capture` takes the lines the Markdown
widgets drew and `FrozenText` shows them as one Line API widget; the Markdown widgets
are removed. When the width or the theme changes, a frozen block asks to be rendered
again (`Stale`), but only once it is on screen.
"""

from __future__ import annotations

from rich.style import Style
from textual.geometry import Region, Size
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget


def _overlay(line: Strip, strip: Strip, x: int, width: int) -> Strip:
    """`strip` painted over `line` from column `x` (clipped to `width`)."""
    if x >= width:
        return line
    strip = strip.crop(0, width - x) if strip.cell_length > width - x else strip
    end = x + strip.cell_length
    left = line.crop(0, x) if x > 0 else None
    right = line.crop(end, width) if end < width else None
    return Strip.join([left, strip, right])


def capture(root: Widget) -> list[Strip] | None:
    """The lines `root` and its descendants render, composited, or None if `root` has
    not been laid out yet."""
    try:
        base = root.region
    except Exception:
        return None
    if base.width <= 0 or base.height <= 0:
        return None
    width, height = base.width, base.height
    style = root.rich_style
    lines = [Strip.blank(width, style) for _ in range(height)]
    for widget in (root, *root.walk_children(Widget)):
        if not widget.display or not widget.visible:
            continue
        region = widget.region
        if region.width <= 0 or region.height <= 0:
            continue
        dx, dy = region.x - base.x, region.y - base.y
        strips = widget.render_lines(Region(0, 0, region.width, region.height))
        for i, strip in enumerate(strips):
            y = dy + i
            if 0 <= y < height:
                lines[y] = _overlay(lines[y], strip, dx, width)
    return [line.simplify() for line in lines]


class FrozenText(Widget):
    """Pre-rendered lines (the finished part of an answer) with their Markdown source."""

    DEFAULT_CSS = """
    FrozenText {
        width: 1fr;
        height: auto;
    }
    """

    class Stale(Message):
        """The lines no longer fit (new width or theme) and this block is on screen."""

        def __init__(self, frozen: FrozenText) -> None:
            super().__init__()
            self.frozen = frozen

    def __init__(self) -> None:
        super().__init__()
        self._lines: list[Strip] = []
        self._width = 0
        self.sources: list[str] = []
        self._theme = ""
        self._stale_sent = False

    @property
    def source(self) -> str:
        return "".join(self.sources)

    @property
    def line_count(self) -> int:
        return len(self._lines)

    def add(self, lines: list[Strip], source: str) -> None:
        if not self._lines:
            self._width = max((line.cell_length for line in lines), default=0)
            self._theme = self.app.theme
        self._lines.extend(lines)
        self.sources.append(source)
        self.refresh(layout=True)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._lines)

    @property
    def stale(self) -> bool:
        return bool(self._lines) and (
            self.size.width != self._width or self.app.theme != self._theme
        )

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y >= len(self._lines):
            return Strip.blank(width)
        if self.stale and not self._stale_sent:
            self._stale_sent = True
            self.post_message(self.Stale(self))
        line = self._lines[y]
        if line.cell_length != width:
            line = line.crop(0, width).extend_cell_length(width, Style())
        return line

    def get_selection(self, selection):  # type: ignore[no-untyped-def]
        text = "\n".join(line.text.rstrip() for line in self._lines)
        return selection.extract(text), "\n"
