"""The reasoning pane: a title line (live timer, then the summary) over the trace.

Click the title (or focus it and press enter/space) to collapse or expand one pane;
the app's ctrl+t sets every pane at once.
"""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from r1chat.tui.widgets.reasoning_log import ReasoningLog

EXPANDED, COLLAPSED = "▼", "▶"


class PaneTitle(Widget, can_focus=True):
    """The clickable title line of a reasoning pane (one line; repainting it for the
    live timer never needs a layout pass)."""

    DEFAULT_CSS = """
    PaneTitle {
        height: 1;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter,space", "toggle_pane", "Show/hide reasoning", show=False),
        Binding("r", "read", "Read all"),
    ]
    ALLOW_SELECT = False

    class Toggle(Message):
        pass

    def __init__(self) -> None:
        super().__init__()
        self._text_content = Content("")

    def update(self, content: Content) -> None:
        if content != self._text_content:
            self._text_content = content
            self.refresh()

    @property
    def content(self) -> Content:
        return self._text_content

    def render(self) -> Content:
        return self._text_content

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.post_message(self.Toggle())

    def action_toggle_pane(self) -> None:
        self.post_message(self.Toggle())

    def action_read(self) -> None:
        pane = self.parent
        if isinstance(pane, ReasoningPane):
            pane.read()


class ReasoningPane(Vertical):
    collapsed: reactive[bool] = reactive(False, init=False)

    class Toggled(Message):
        """The user toggled this pane."""

        def __init__(self, pane: ReasoningPane) -> None:
            super().__init__()
            self.pane = pane

    def __init__(
        self,
        title: str,
        text: str = "",
        *,
        collapsed: bool = False,
        empty: bool = False,
        classes: str | None = None,
    ) -> None:
        super().__init__(classes=classes)
        self._title = title
        self._trace = ReasoningLog(text)
        self._label = PaneTitle()
        self.set_reactive(ReasoningPane.collapsed, collapsed)
        self.set_class(collapsed, "-collapsed")
        self.set_class(empty, "-empty")
        self._paint_title()

    def compose(self) -> ComposeResult:
        yield self._label
        yield self._trace

    @property
    def title(self) -> str:
        return self._title

    @property
    def text(self) -> str:
        return self._trace.text

    @property
    def empty(self) -> bool:
        return self.has_class("-empty")

    def set_title(self, title: str, *, empty: bool | None = None) -> None:
        if empty is not None:
            self.set_class(empty, "-empty")
        if title != self._title or empty is not None:
            self._title = title
            self._paint_title()

    def append(self, text: str) -> None:
        self._trace.append(text)

    def read(self) -> None:
        """Ask for the reader view of this trace."""
        self._trace.action_read()

    def _paint_title(self) -> None:
        if self.empty:
            self._label.update(Content.styled(f"  {self._title}", "italic"))
        else:
            symbol = COLLAPSED if self.collapsed else EXPANDED
            self._label.update(Content(f"{symbol} {self._title}"))

    def watch_collapsed(self, collapsed: bool) -> None:
        self.set_class(collapsed, "-collapsed")
        self._paint_title()

    def on_pane_title_toggle(self, event: PaneTitle.Toggle) -> None:
        event.stop()
        if self.empty:
            return
        self.collapsed = not self.collapsed
        self.post_message(self.Toggled(self))
