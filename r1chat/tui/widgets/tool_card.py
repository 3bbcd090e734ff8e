"""A tool call in the transcript, between the reasoning that made it and what follows:
the tool and its arguments, the question (y once · a always · n deny), then the result,
folded to a few lines (enter unfolds)."""

from __future__ import annotations

import asyncio
import json
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.content import Content
from textual.widgets import Static

from r1chat.core.printable import printable
from r1chat.session.tool_rounds import Called

FOLDED = 3  # result lines shown folded
MARKS = {
    "ok": ("✓", "$success"),
    "error": ("✖", "$error"),
    "denied": ("✖ denied", "$warning"),
    "stopped": ("■ stopped", "$warning"),
}


class ToolCard(Static, can_focus=True):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "decide('once')", "Allow once"),
        Binding("a", "decide('always')", "Always allow"),
        Binding("n", "decide('deny')", "Deny"),
        Binding("enter", "unfold", "Unfold", show=False),
    ]

    def __init__(self, called: Called, server: str = "") -> None:
        super().__init__("", classes="tool-card")
        self.called = called
        self.server = server
        self.state = called.status  # asked, asking, running, ok, error, denied, stopped
        self.unfolded = False
        self.decision: asyncio.Future[str | None] | None = None
        self.border_title = f"⚙ {printable(called.call.name)}" + (
            f" · {printable(server)}" if server else ""
        )
        self._draw()

    # -- what the screen drives -------------------------------------------------------

    def ask(self) -> asyncio.Future[str | None]:
        """Ask whether the call may run: once, always, deny (None: esc stopped it)."""
        self.state = "asking"
        self.decision = asyncio.get_running_loop().create_future()
        self._draw()
        return self.decision

    def running(self) -> None:
        self.state = "running"
        self._draw()

    def settled(self) -> None:
        """The call is over: show its status and result."""
        self.state = self.called.status
        if self.decision is not None and not self.decision.done():
            self.decision.set_result(None)
        self._draw()

    # -- keys -------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "decide":
            return self.state == "asking"
        return True

    def action_decide(self, choice: str | None) -> None:
        """The user's answer (None: stop asking)."""
        if self.decision is not None and not self.decision.done():
            self.decision.set_result(choice)

    def action_unfold(self) -> None:
        self.unfolded = not self.unfolded
        self._draw()

    def on_click(self) -> None:
        self.action_unfold()

    # -- drawing ----------------------------------------------------------------------

    def _draw(self) -> None:
        lines = [Content.styled(printable(_arguments(self.called.call.arguments)), "dim")]
        if self.state == "asking":
            lines.append(
                Content.assemble(
                    ("Run this tool? ", "bold"),
                    ("y", "bold $accent"),
                    " once · ",
                    ("a", "bold $accent"),
                    " always · ",
                    ("n", "bold $accent"),
                    " deny",
                )
            )
        elif self.state == "running":
            lines.append(Content.styled("running… esc stops it", "italic $text-muted"))
        elif self.state in MARKS:
            mark, colour = MARKS[self.state]
            result = self.called.result.rstrip()
            shown = result.splitlines() or [""]
            more = len(shown) - FOLDED
            if more > 0 and not self.unfolded:
                shown = [*shown[:FOLDED], f"… {more} more line{'s' if more != 1 else ''} (enter)"]
            lines.append(Content.assemble((mark + " ", f"bold {colour}"), printable(shown[0])))
            lines += [Content(printable(line)) for line in shown[1:]]
        self.set_class(self.state == "asking", "-asking")
        self.update(Content("\n").join(lines))


def _arguments(text: str) -> str:
    """The call's arguments on one line."""
    try:
        return json.dumps(json.loads(text), ensure_ascii=False)
    except ValueError:
        return " ".join(text.split())
