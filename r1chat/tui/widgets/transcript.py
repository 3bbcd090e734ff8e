"""The scrolling transcript: prompts and replies, newest at the bottom.

It follows the stream (Textual's anchor) until the user scrolls up, and picks the
side-by-side layout when it is wide enough (see `WIDE`).
"""

from __future__ import annotations

from textual import events
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

WIDE = 104
"""Transcript width (cells) from which reasoning and answer sit side by side; with the
sidebar closed that is a terminal of about 110 columns."""


class Banner(Static):
    """A line in the transcript that is not a turn (welcome, model errors)."""

    def __init__(self, text: str | Content, *, classes: str = "") -> None:
        super().__init__(
            text if isinstance(text, Content) else Content(text), classes=f"banner {classes}"
        )


class Transcript(VerticalScroll, can_focus=True):
    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width >= WIDE, "-wide")

    def follow(self) -> None:
        """Stick to the bottom as content grows, until the user scrolls up."""
        self.anchor()

    @property
    def following(self) -> bool:
        return self.is_anchored and not self._anchor_released
