"""Word wrapping for text that only grows at the end (a streaming reasoning trace).

Greedy wrapping is prefix-stable: text appended to a paragraph can only change the
paragraph's last row. `WrappedText` keeps the finished rows and re-wraps only the last,
"open" row when text arrives, so appending costs the same at token 10 and token 20,000.
A width change re-wraps everything once.
"""

from __future__ import annotations

import re

from rich.cells import cell_len, get_character_cell_size

_TOKEN = re.compile(r"\S+\s*|\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean(text: str) -> str:
    """Tabs to spaces, CR and other control characters dropped (they would break rows)."""
    text = text.replace("\t", "    ")
    return _CONTROL.sub("", text) if _CONTROL.search(text) else text


def _split_cells(word: str, width: int) -> list[str]:
    """A word wider than `width`, cut into pieces at most `width` cells wide."""
    pieces: list[str] = []
    start, used = 0, 0
    for i, ch in enumerate(word):
        size = get_character_cell_size(ch)
        if used + size > width and i > start:
            pieces.append(word[start:i])
            start, used = i, 0
        used += size
    pieces.append(word[start:])
    return pieces


def wrap_raw(text: str, width: int) -> list[str]:
    """Greedy word wrap of one paragraph; rows keep their trailing spaces, so
    `"".join(rows) == text`. Always at least one row (possibly empty)."""
    width = max(1, width)
    rows: list[str] = []
    row, cells = "", 0  # the row so far and its width in cells, trailing spaces included
    for token in _TOKEN.findall(text):
        word = token.rstrip()
        size = cell_len(word)
        if row and size and cells + size > width:
            rows.append(row)
            row, cells = "", 0
        if not row and size > width:
            pieces = _split_cells(word, width)
            rows.extend(pieces[:-1])
            row, cells = pieces[-1], cell_len(pieces[-1])
            token = token[len(word) :]
            size = 0
        row += token
        cells += cell_len(token)
    rows.append(row)
    return rows


class WrappedText:
    """Append-only text, word-wrapped to a width, addressed by display row."""

    def __init__(self, width: int = 80) -> None:
        self.width = max(1, width)
        self._paragraphs: list[str] = []  # finished paragraphs (no newline)
        self._current: list[str] = []  # chunks of the paragraph being written
        self._rows: list[str] = []  # finished display rows (trailing spaces removed)
        self._open = ""  # raw text of the last row of the current paragraph
        self._started = False  # leading newlines are dropped

    # -- reading ----------------------------------------------------------------------

    def __len__(self) -> int:
        """Display rows; a trailing empty row (text ending in a newline) is not shown."""
        if self._open or not self._rows:
            return len(self._rows) + 1 if (self._open or self._started) else 0
        return len(self._rows)

    def row(self, index: int) -> str:
        if index < len(self._rows):
            return self._rows[index]
        if index == len(self._rows):
            return self._open.rstrip()
        raise IndexError(index)

    @property
    def text(self) -> str:
        return "\n".join([*self._paragraphs, "".join(self._current)])

    # -- writing ----------------------------------------------------------------------

    def append(self, text: str) -> int:
        """Add text; returns the index of the first display row that changed."""
        text = clean(text)
        if not self._started:
            text = text.lstrip("\n")
            if not text:
                return 0
            self._started = True
        first = len(self._rows)
        parts = text.split("\n")
        for i, part in enumerate(parts):
            if i:
                self._end_paragraph()
            if part:
                self._current.append(part)
                rows = wrap_raw(self._open + part, self.width)
                self._rows.extend(r.rstrip() for r in rows[:-1])
                self._open = rows[-1]
        return first

    def _end_paragraph(self) -> None:
        self._paragraphs.append("".join(self._current))
        self._current = []
        self._rows.append(self._open.rstrip())
        self._open = ""

    def set_width(self, width: int) -> None:
        """Re-wrap everything for a new width (once per resize)."""
        width = max(1, width)
        if width == self.width:
            return
        self.width = width
        rows: list[str] = []
        for paragraph in self._paragraphs:
            rows.extend(r.rstrip() for r in wrap_raw(paragraph, width))
        last = wrap_raw("".join(self._current), width)
        rows.extend(r.rstrip() for r in last[:-1])
        self._rows, self._open = rows, last[-1]
