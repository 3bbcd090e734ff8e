"""The multi-line prompt box: Enter sends, Shift+Enter or ctrl+j starts a new line,
Up on an empty box edits the last prompt; it grows with its text up to a few lines."""

from __future__ import annotations

from textual import events
from textual.message import Message
from textual.widgets import TextArea

PLACEHOLDER = "Ask anything  (Enter sends · ctrl+j new line · ctrl+p commands)"


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

    async def _on_key(self, event: events.Key) -> None:
        key = event.key
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
