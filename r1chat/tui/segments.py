"""Where a streaming Markdown answer can be cut into independent blocks.

`MarkdownView` renders an answer block by block, so that each batch of tokens re-renders
only the block still growing. A cut is made only where rendering the pieces apart and
the whole together agree: at the start of a line that follows a blank line, outside a
code fence, when that line opens a heading, a fence or a plain paragraph (never a list
item, table row, quote or indented line).
"""

from __future__ import annotations

import re

MIN_SEGMENT_CHARS = 1200
_LIST_ITEM = re.compile(r"\d{1,9}[.)]")
_FENCES = ("```", "~~~")


def opens_block(line: str) -> bool:
    """Whether a line (its first few characters) starts a block a new document may
    start with, without changing how the text before it renders."""
    if not line or line[0] in " \t-*+|>=_":
        return False
    if line.startswith("#") or line.startswith(_FENCES):
        return True
    return line[0].isalnum() and not _LIST_ITEM.match(line)


class Segmenter:
    """Splits streamed Markdown into pieces; `feed` returns `(starts_new_segment, text)`
    pairs. At most the first three characters of a line are held back while deciding."""

    def __init__(self, min_chars: int = MIN_SEGMENT_CHARS) -> None:
        self.min_chars = min_chars
        self.size = 0  # characters in the current segment
        self.line = ""  # the current line so far
        self.held = ""  # its characters not handed out yet (a possible cut point)
        self.deciding = False
        self.prev_blank = False
        self.in_fence = False

    def feed(self, text: str) -> list[tuple[bool, str]]:
        out: list[tuple[bool, str]] = []
        buf: list[str] = []
        new = False

        def emit() -> None:
            nonlocal new
            if buf:
                out.append((new, "".join(buf)))
                buf.clear()
                new = False

        i, n = 0, len(text)
        while i < n:
            if self.deciding:
                j = text.find("\n", i)
                end = n if j < 0 else j
                piece = text[i:end]
                self.held += piece
                self.line += piece
                i = end
                if len(self.line) >= 3 or j >= 0:
                    self.deciding = False
                    if opens_block(self.line):
                        emit()
                        new = True
                        self.size = 0
                    buf.append(self.held)
                    self.size += len(self.held)
                    self.held = ""
                continue
            j = text.find("\n", i)
            if j < 0:
                piece = text[i:]
                self.line += piece
                buf.append(piece)
                self.size += len(piece)
                break
            piece = text[i : j + 1]
            buf.append(piece)
            self.size += len(piece)
            self.line += text[i:j]
            self._end_line()
            i = j + 1
            if self.prev_blank and self.size >= self.min_chars:
                self.deciding = True
        emit()
        return out

    def flush(self) -> str:
        """Text still held back (the stream ended while deciding)."""
        held, self.held, self.deciding = self.held, "", False
        self.size += len(held)
        return held

    def _end_line(self) -> None:
        line = self.line
        if line.lstrip(" ").startswith(_FENCES):
            self.in_fence = not self.in_fence
        self.prev_blank = not line.strip() and not self.in_fence
        self.line = ""


def split(text: str, min_chars: int = MIN_SEGMENT_CHARS) -> list[str]:
    """A whole Markdown text as segments (what streaming it would have produced)."""
    segmenter = Segmenter(min_chars)
    segments: list[str] = []
    for new, piece in segmenter.feed(text):
        if new or not segments:
            segments.append(piece)
        else:
            segments[-1] += piece
    if held := segmenter.flush():
        if segments:
            segments[-1] += held
        else:
            segments.append(held)
    return segments
