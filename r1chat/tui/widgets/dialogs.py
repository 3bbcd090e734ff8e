"""Small modal dialogs: a yes/no confirmation and a one-line text prompt (with filesystem
path completion for file names)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Button, Input, Static


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "answer(False)", "No", show=False),
        Binding("y", "answer(True)", "Yes", show=False),
    ]

    def __init__(self, question: str, *, yes: str = "Delete") -> None:
        super().__init__(classes="dialog-screen")
        self._question, self._yes = question, yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Content(self._question), classes="dialog-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self._yes} (y)", variant="error", id="yes")
                yield Button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class TextPromptScreen(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(
        self,
        question: str,
        value: str = "",
        *,
        suggester: Suggester | None = None,
        placeholder: str = "",
    ) -> None:
        super().__init__(classes="dialog-screen")
        self._question, self._value = question, value
        self._suggester, self._placeholder = suggester, placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Content(self._question), classes="dialog-text")
            yield Input(
                self._value, id="answer", suggester=self._suggester, placeholder=self._placeholder
            )

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)


class PathSuggester(Suggester):
    """Completes what is typed to the first matching folder or file ending in `suffix`
    (→ at the end of the line accepts it); hidden entries only when a dot is typed."""

    def __init__(self, suffix: str = "") -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.suffix = suffix.lower()

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        typed = Path(value).expanduser()
        folder, start = (typed, "") if value.endswith(os.sep) else (typed.parent, typed.name)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return None
        for entry in entries:
            name = entry.name
            if not name.startswith(start) or (name.startswith(".") and not start.startswith(".")):
                continue
            is_dir = entry.is_dir()
            if is_dir or name.lower().endswith(self.suffix):
                return value[: len(value) - len(start)] + name + (os.sep if is_dir else "")
        return None
