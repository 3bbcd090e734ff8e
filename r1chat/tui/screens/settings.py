"""The settings screen (from the command palette): sampling, context, system prompt and
the reasoning controls. Returns new `ChatPrefs`, or None when cancelled."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Select, Static, TextArea

from r1chat.core.overflow import POLICIES
from r1chat.core.request import DEFAULT_CTX
from r1chat.tui.preferences import ChatPrefs

FIELDS = {
    "model": "Model",
    "temperature": "Temperature",
    "top_p": "Top-p",
    "max_tokens": "Max tokens",
    "n_ctx": "Context size",
    "system": "System prompt",
    "display": "Reasoning display",
    "think_budget": "Think budget",
    "loop_guard": "Loop guard",
    "think": "Thinking",
    "math": "Math mode",
    "overflow": "Over the context",
}
"""Editable fields and their labels (the palette offers one command per field)."""

HELP = {
    "model": "GGUF path or catalog name; changing it reloads the model",
    "temperature": "0 to 5 (DeepSeek advises 0.5–0.7)",
    "top_p": "above 0, at most 1 (0.95)",
    "max_tokens": "empty: until the context is full",
    "n_ctx": f"tokens; empty: {DEFAULT_CTX}; changing it reloads the model",
    "think_budget": "tokens of reasoning before it is cut; empty: no limit",
    "overflow": "when the chat outgrows the context: leave out its oldest turns, or stop",
}


class Tick(Checkbox):
    """A checkbox whose mark says on or off without colour: ✓ when on, blank when off."""

    def on_mount(self) -> None:
        self._mark()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self._mark()  # the message then bubbles on to the screen

    def _mark(self) -> None:
        self.BUTTON_INNER = "✓" if self.value else " "
        self.refresh()


class SettingsError(ValueError):
    pass


def _number(text: str, name: str, kind: type, low: float | None = None) -> Any:
    text = text.strip()
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise SettingsError(
            f"{name}: {text!r} is not a {'whole ' if kind is int else ''}number"
        ) from None
    if low is not None and value < low:
        raise SettingsError(f"{name} must be at least {low:g}")
    return value


class SettingsScreen(ModalScreen[ChatPrefs | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", show=False),
        Binding("ctrl+s", "save", "Save", show=False),
    ]

    def __init__(self, prefs: ChatPrefs, focus: str | None = None) -> None:
        super().__init__(classes="dialog-screen")
        self.prefs = prefs
        self._focus = focus

    def compose(self) -> ComposeResult:
        p = self.prefs

        def number(name: str, value: str, kind: str) -> Input:
            return Input(value, id=name, type=kind, compact=True)  # type: ignore[arg-type]

        fields: dict[str, Widget] = {
            "model": Input(p.model or "", id="model", compact=True),
            "temperature": number("temperature", f"{p.temperature:g}", "number"),
            "top_p": number("top_p", f"{p.top_p:g}", "number"),
            "max_tokens": number("max_tokens", _text(p.max_tokens), "integer"),
            "n_ctx": number("n_ctx", _text(p.n_ctx), "integer"),
            "system": TextArea(
                p.system, id="system", compact=True, soft_wrap=True, tab_behavior="focus"
            ),
            "display": Select(
                [("show", "show"), ("collapsed", "collapsed")],
                value=p.display,
                allow_blank=False,
                id="display",
                compact=True,
            ),
            "think_budget": number("think_budget", _text(p.think_budget), "integer"),
            "loop_guard": Tick(
                "cut reasoning or answers that repeat", p.loop_guard, id="loop_guard"
            ),
            "think": Tick("let the model reason (off: no-think)", p.think, id="think"),
            "math": Tick("step by step, final answer in \\boxed{}", p.math, id="math"),
            "overflow": Select(
                [(policy, policy) for policy in POLICIES],
                value=p.overflow,
                allow_blank=False,
                id="overflow",
                compact=True,
            ),
        }
        with Vertical(classes="dialog settings"):
            yield Static("Settings  (ctrl+s saves · esc cancels)", classes="dialog-title")
            with VerticalScroll(id="settings-form"):
                for name, widget in fields.items():
                    yield self._row(name, widget)
            yield Static("", id="settings-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def _row(self, name: str, widget: Widget) -> Widget:
        label = Static(FIELDS[name], classes="field-label")
        children: list[Widget] = [widget]
        if name in HELP:
            children.append(Static(HELP[name], classes="field-help"))
        return Horizontal(label, Vertical(*children, classes="field-body"), classes="field")

    def on_mount(self) -> None:
        self.query_one(f"#{self._focus or 'temperature'}").focus()

    def read(self) -> ChatPrefs:
        """The form's values; raises SettingsError naming the first bad field."""
        value = lambda name: self.query_one(f"#{name}", Input).value  # noqa: E731
        temperature = _number(value("temperature"), "temperature", float, 0)
        if temperature is None or temperature > 5:
            raise SettingsError("temperature must be between 0 and 5")
        top_p = _number(value("top_p"), "top-p", float)
        if top_p is None or not 0 < top_p <= 1:
            raise SettingsError("top-p must be above 0 and at most 1")
        display = self.query_one("#display", Select).value
        overflow = self.query_one("#overflow", Select).value
        return replace(
            self.prefs,
            model=value("model").strip() or None,
            temperature=temperature,
            top_p=top_p,
            max_tokens=_number(value("max_tokens"), "max tokens", int, 1),
            n_ctx=_number(value("n_ctx"), "context size", int, 64),
            system=self.query_one("#system", TextArea).text.strip(),
            display=str(display) if display in ("show", "collapsed") else self.prefs.display,
            think_budget=_number(value("think_budget"), "think budget", int, 1),
            loop_guard=self.query_one("#loop_guard", Checkbox).value,
            think=self.query_one("#think", Checkbox).value,
            math=self.query_one("#math", Checkbox).value,
            overflow=str(overflow) if overflow in POLICIES else self.prefs.overflow,
        )

    def action_save(self) -> None:
        try:
            prefs = self.read()
        except SettingsError as e:
            self.query_one("#settings-error", Static).update(Content(f"✖ {e}"))
            return
        self.dismiss(prefs)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#save")
    def _save(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.action_cancel()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_save()


def _text(value: int | None) -> str:
    return "" if value is None else str(value)
