"""Streaming Markdown as one Line API widget, rendered block by block with Rich.

Why not Textual's `Markdown` widget with `MarkdownStream`: it builds a widget per block,
list item and table cell, and every layout pass walks them all. Measured here on the
long-trace fixture's 24 KB answer, Textual's `Markdown` took 2.5 s of UI-thread time to
mount and paint it once (1,640 widgets) and 4.6 s when streamed, against 0.1 s for Rich's
Markdown renderer; since the UI thread shares the GIL with generation, that made the app
3-5x slower than `r1chat ask`. This widget keeps the rendered lines of finished blocks
and re-renders only the last, growing block for each batch of tokens, so a batch costs
the same at the end of a long answer as at its start.

The text is cut into blocks where `r1chat.tui.segments.Segmenter` says it is safe (a blank
line outside code fences, before a heading, fence or paragraph); each block is rendered
on its own and blocks are joined by one blank line, as Rich's renderer spaces them.
"""

from __future__ import annotations

import io
import time
from functools import lru_cache
from typing import ClassVar

from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markdown import CodeBlock, Heading, Markdown
from rich.segment import Segment
from rich.style import Style
from rich.syntax import Syntax, SyntaxTheme
from rich.theme import Theme
from textual.color import Color
from textual.geometry import Region, Size
from textual.selection import Selection
from textual.strip import Strip
from textual.widget import Widget

from r1chat.core.printable import printable
from r1chat.tui.segments import Segmenter

TAIL_THROTTLE_CHARS = 4000
"""Past this size the growing block (a long code block, a long list) is re-rendered at
most every `TAIL_THROTTLE_S`, so its cost per token stays flat."""
TAIL_THROTTLE_S = 0.25


class _LeftHeading(Heading):
    LEVEL_ALIGN: ClassVar = dict.fromkeys(("h1", "h2", "h3", "h4", "h5", "h6"), "left")


@lru_cache(maxsize=64)
def _lexer(name: str) -> Lexer:
    """Pygments finds a lexer by name by scanning all of them: once per name is enough."""
    try:
        return get_lexer_by_name(name, stripnl=False, ensurenl=True, tabsize=4)
    except ClassNotFound:
        return get_lexer_by_name("text", stripnl=False, ensurenl=True, tabsize=4)


@lru_cache(maxsize=8)
def _syntax_theme(name: str) -> SyntaxTheme:
    return Syntax.get_theme(name)


class _CodeBlock(CodeBlock):
    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        code = str(self.text).rstrip()
        yield Syntax(
            code,
            _lexer(self.lexer_name),
            theme=_syntax_theme(self.theme),
            word_wrap=True,
            padding=1,
        )


class _AnswerMarkdown(Markdown):
    elements: ClassVar = {
        **Markdown.elements,
        "heading_open": _LeftHeading,
        "fence": _CodeBlock,
        "code_block": _CodeBlock,
    }


def _color(variables: dict[str, str], name: str, fallback: Color) -> Color:
    try:
        return Color.parse(variables[name])
    except Exception:
        return fallback


def markdown_theme(variables: dict[str, str]) -> Theme:
    """Rich `markdown.*` styles from the Textual theme's CSS variables."""
    fg = _color(variables, "foreground", Color(224, 224, 224))
    bg = _color(variables, "background", Color(18, 18, 18))
    muted = bg.blend(fg, 0.6)
    primary = _color(variables, "text-primary", fg)
    accent = _color(variables, "text-accent", fg)
    warning = _color(variables, "text-warning", fg)
    warn_bg = bg.blend(_color(variables, "warning", fg), 0.12)

    def heading(n: int, *, underline: bool = False, italic: bool = False) -> Style:
        color = _color(variables, f"markdown-h{n}-color", primary)
        return Style(color=color.rich_color, bold=True, underline=underline, italic=italic)

    styles: dict[str, Style] = {
        "markdown.paragraph": Style(),
        "markdown.text": Style(),
        "markdown.em": Style(italic=True),
        "markdown.emph": Style(italic=True),
        "markdown.strong": Style(bold=True),
        "markdown.s": Style(strike=True),
        "markdown.code": Style(color=warning.rich_color, bgcolor=warn_bg.rich_color),
        "markdown.code_block": Style(bgcolor=bg.blend(fg, 0.06).rich_color),
        "markdown.block_quote": Style(color=muted.rich_color, italic=True),
        "markdown.list": Style(),
        "markdown.item": Style(),
        "markdown.item.bullet": Style(color=primary.rich_color, bold=True),
        "markdown.item.number": Style(color=primary.rich_color),
        "markdown.hr": Style(color=muted.rich_color),
        "markdown.h1.border": Style(color=muted.rich_color),
        "markdown.h1": heading(1, underline=True),
        "markdown.h2": heading(2),
        "markdown.h3": heading(3),
        "markdown.h4": heading(4, italic=True),
        "markdown.h5": Style(bold=True, italic=True),
        "markdown.h6": Style(italic=True, color=muted.rich_color),
        "markdown.h7": Style(italic=True, color=muted.rich_color),
        "markdown.link": Style(color=accent.rich_color, underline=True),
        "markdown.link_url": Style(color=muted.rich_color),
        "markdown.table.border": Style(color=muted.rich_color),
        "markdown.table.header": Style(color=primary.rich_color, bold=True),
        "markdown.kbd": Style(bold=True),
    }
    return Theme(styles, inherit=True)


class MarkdownView(Widget):
    """Append-only Markdown: `append()` a batch, `finish()` at the end."""

    DEFAULT_CSS = """
    MarkdownView {
        width: 1fr;
        height: auto;
    }
    """

    def __init__(self, text: str = "", *, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self._segmenter = Segmenter(min_chars=0)
        self._blocks: list[str] = []  # finished blocks' sources
        self._done: list[Strip] = []  # their lines, joined by blank lines
        self._tail = ""  # the block still growing
        self._tail_lines: list[Strip] = []
        self._tail_dirty = False
        self._tail_rendered_at = 0.0
        self._width = 0
        self._theme_key = ""
        self._md_console: Console | None = None
        self._parts: list[str] = []
        self._painted_total = 0
        if text:
            self.append(text)
            self.finish()

    # -- the text ---------------------------------------------------------------------

    @property
    def source(self) -> str:
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    @property
    def line_count(self) -> int:
        return self._total()

    def append(self, text: str) -> None:
        """Add Markdown source (without terminal control sequences)."""
        text = printable(text)
        if not text:
            return
        self._parts.append(text)
        closed: list[str] = []
        for new, piece in self._segmenter.feed(text):
            if new and self._tail:
                closed.append(self._tail)
                self._tail = ""
            self._tail += piece
        self._close(closed)
        self._tail_dirty = True
        self._update(final=False)

    def finish(self) -> None:
        """The text is complete: render the last block."""
        held = self._segmenter.flush()
        if held:
            self._parts.append(held)
            self._tail += held
        if self._tail:
            self._close([self._tail])
            self._tail = ""
        self._update(final=True)

    def _close(self, sources: list[str]) -> None:
        """Blocks that are complete: render them once, together (one Rich call per batch,
        not one per block; they were cut where rendering apart and together agree)."""
        if not sources:
            return
        self._blocks.extend(sources)
        self._tail_lines = []
        self._tail_dirty = False
        if self._width:
            self._add_done(self._render_block("".join(sources)))

    def _add_done(self, lines: list[Strip]) -> None:
        if not lines:
            return
        if self._done:
            self._done.append(self._blank())
        self._done.extend(lines)

    # -- rendering --------------------------------------------------------------------

    def _theme_name(self) -> str:
        try:
            return self.app.theme
        except Exception:  # not mounted yet
            return ""

    def _ensure(self, width: int) -> None:
        """Render everything again if the width or the theme changed."""
        theme = self._theme_name()
        if width <= 0 or (width == self._width and theme == self._theme_key):
            return
        self._width, self._theme_key = width, theme
        self._md_console = None
        self._done = []
        if self._blocks:
            self._add_done(self._render_block("".join(self._blocks)))
        self._tail_dirty = bool(self._tail)
        self._render_tail(force=True)

    def _render_tail(self, force: bool = False) -> bool:
        if not self._tail_dirty or not self._width:
            return False
        now = time.monotonic()
        big = len(self._tail) > TAIL_THROTTLE_CHARS
        if not force and big and now - self._tail_rendered_at < TAIL_THROTTLE_S:
            return False
        self._tail_lines = self._render_block(self._tail)
        self._tail_dirty = False
        self._tail_rendered_at = now
        return True

    def _make_console(self) -> Console:
        try:
            variables = self.app.get_css_variables()
        except Exception:
            variables = {}
        return Console(
            file=io.StringIO(),
            width=max(1, self._width),
            color_system="truecolor",
            force_terminal=True,
            legacy_windows=False,
            theme=markdown_theme(variables),
            emoji=False,
            markup=False,
            highlight=False,
        )

    def _code_theme(self) -> str:
        try:
            return "monokai" if self.app.current_theme.dark else "friendly"
        except Exception:
            return "monokai"

    def _render_block(self, source: str) -> list[Strip]:
        if self._md_console is None:
            self._md_console = self._make_console()
        console, width = self._md_console, self._width
        base = self.rich_style
        md = _AnswerMarkdown(source, code_theme=self._code_theme(), hyperlinks=False)
        lines = console.render_lines(
            md, console.options.update_width(width), style=base, pad=True, new_lines=False
        )
        return self._tidy([Strip(line, width) for line in lines], base)

    @staticmethod
    def _tidy(strips: list[Strip], base: Style) -> list[Strip]:
        """Drop blank lines at both ends and collapse runs of them (Rich spaces some
        blocks with two); lines with their own background (code padding) are kept."""

        def plain_blank(strip: Strip) -> bool:
            return not strip.text.strip() and all(
                seg.style is None or seg.style.bgcolor == base.bgcolor for seg in strip
            )

        out: list[Strip] = []
        for strip in strips:
            if plain_blank(strip) and (not out or plain_blank(out[-1])):
                continue
            out.append(strip)
        while out and plain_blank(out[-1]):
            out.pop()
        return out

    def _blank(self) -> Strip:
        return Strip([Segment(" " * self._width, self.rich_style)], self._width)

    def _total(self) -> int:
        tail = len(self._tail_lines)
        return len(self._done) + (tail + (1 if self._done else 0) if tail else 0)

    def _update(self, final: bool) -> None:
        """After new text: re-render the growing block, then repaint or relayout."""
        if not self._width or not self.is_mounted:
            return
        rendered = self._render_tail(force=final)
        total = self._total()
        if total != self._painted_total:
            self._painted_total = total
            self.refresh(layout=True)
        elif rendered:
            start = max(0, len(self._done) - 1)
            self.refresh(Region(0, start, self._width, total - start))

    # -- Textual hooks ----------------------------------------------------------------

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        self._ensure(width)
        self._painted_total = self._total()
        return self._painted_total

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        self._ensure(width)
        done = len(self._done)
        if y < done:
            return self._done[y]
        if self._tail_lines:
            y -= done + (1 if self._done else 0)
            if 0 <= y < len(self._tail_lines):
                return self._tail_lines[y]
        return Strip.blank(width, self.rich_style)

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        lines = [*self._done, *self._tail_lines]
        return selection.extract("\n".join(s.text.rstrip() for s in lines)), "\n"
