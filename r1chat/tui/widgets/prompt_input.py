"""The multi-line prompt box: Enter sends, Shift+Enter or ctrl+j starts a new line,
Up on an empty box edits the last prompt, Tab completes an `@path` (a file to attach);
it grows with its text up to a few lines."""

from __future__ import annotations

import os
from pathlib import Path

from textual import events
from textual.message import Message
from textual.widgets import TextArea

from r1chat.core.attachments import completions
from r1chat.core.printable import printable

PLACEHOLDER = "Ask anything  (Enter sends · ctrl+j new line · ctrl+p commands)"
SHOWN = 6
"""Completions listed under the prompt at most."""


class PromptInput(TextArea):
    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class EditLast(Message):
        """Up was pressed on an empty prompt."""

    class Page(Message):
        """PageUp/PageDown on a prompt of one line: scroll the transcript instead."""

        def __init__(self, direction: int) -> None:
            super().__init__()
            self.direction = direction

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            "",
            soft_wrap=True,
            tab_behavior="focus",
            show_line_numbers=False,
            placeholder=PLACEHOLDER,
            highlight_cursor_line=False,
            id=id,
        )
        self._listing = False  # the subtitle lists completions

    async def _on_key(self, event: events.Key) -> None:
        key = event.key
        if self._listing and key != "tab":  # the completions listed are out of date
            self.border_subtitle, self._listing = "", False
        if key == "enter":
            event.stop()
            event.prevent_default()
            self.post_message(self.Submitted(self.text))
            return
        if key in ("shift+enter", "ctrl+j", "alt+enter"):
            event.stop()
            event.prevent_default()
            start, end = self.selection
            self._replace_via_keyboard("\n", start, end)
            return
        if key == "tab" and (word := self._mention()) is not None:
            event.stop()
            event.prevent_default()
            self._complete(word)
            return
        if key == "up" and not self.text:
            event.stop()
            event.prevent_default()
            self.post_message(self.EditLast())
            return
        if key in ("pageup", "pagedown") and self.document.line_count <= 1:
            event.stop()
            event.prevent_default()
            self.post_message(self.Page(-1 if key == "pageup" else 1))
            return
        await super()._on_key(event)

    def _mention(self) -> str | None:
        """The `@path` word the cursor ends, without its `@` (None: not at one)."""
        row, col = self.cursor_location
        line = self.document.get_line(row)[:col]
        word = line.rsplit(maxsplit=1)[-1] if line.strip() and not line[-1].isspace() else ""
        return word[1:] if word.startswith("@") and not word.startswith("@@") else None

    def _complete(self, partial: str) -> None:
        """Complete the `@path` at the cursor: at once when one path matches, else as far
        as all matches agree, listing them under the prompt."""
        found = completions(partial, Path.cwd())
        if not found:
            self.border_subtitle, self._listing = f"no file matches @{printable(partial)}", True
            return
        common = os.path.commonprefix(found)  # noqa: RUF071 - by character, as shells do
        whole = len(found) == 1 and not common.endswith("/")
        self.insert(common[len(partial) :] + (" " if whole else ""))
        names = [
            printable(f.rstrip("/").rsplit("/", 1)[-1]) + ("/" if f.endswith("/") else "")
            for f in found
        ]
        more = f" … {len(found) - SHOWN} more" if len(found) > SHOWN else ""
        self.border_subtitle = "" if len(found) == 1 else "  ".join(names[:SHOWN]) + more
        self._listing = len(found) > 1
