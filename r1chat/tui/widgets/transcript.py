"""The scrolling transcript: prompts and replies, newest at the bottom.

It follows the stream (Textual's anchor) until the user scrolls up, and picks the
side-by-side layout when it is wide enough (see `WIDE`).
"""

from __future__ import annotations

from textual import events
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static

from r1chat.session.dialogue import Dialogue
from r1chat.tui.widgets.tool_card import ToolCard
from r1chat.tui.widgets.turns import AssistantTurn, UserMessage

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

    async def show(self, dialogue: Dialogue, *, collapsed: bool, start: int = 0) -> None:
        """Show a saved conversation's turns, from exchange `start` on (what is shown of
        earlier ones stays)."""
        await self.remove_children(self.from_exchange(start) if start else "*")
        widgets: list[Widget] = []
        for ex in dialogue.exchanges[start:]:
            widgets.append(UserMessage(ex.prompt, ex.prompt_version))
            for r in ex.rounds:  # tool calls: each round's reasoning, then its calls
                widgets.append(
                    AssistantTurn.stored(
                        reasoning=r.reasoning,
                        answer=r.text,
                        stats=r.stats or {},
                        finish_reason=None,
                        collapsed=collapsed,
                    )
                )
                widgets += [ToolCard(c) for c in r.calls]
            if ex.reply_id is not None and (ex.answer or ex.reasoning or not ex.rounds):
                widgets.append(
                    AssistantTurn.stored(
                        reasoning=ex.reasoning,
                        answer=ex.answer,
                        stats=ex.stats,
                        finish_reason=ex.finish_reason,
                        collapsed=collapsed,
                        version=ex.reply_version,
                    )
                )
        await self.mount_all(widgets)
        if start == 0:
            self.scroll_end(animate=False)

    def from_exchange(self, index: int) -> list[Widget]:
        """What shows exchange `index` and those after it."""
        children = list(self.children)
        users = [i for i, w in enumerate(children) if isinstance(w, UserMessage)]
        return children[users[index] :] if index < len(users) else []

    def turns(self) -> list[UserMessage | AssistantTurn]:
        """The prompts and replies, top to bottom."""
        return [w for w in self.children if isinstance(w, UserMessage | AssistantTurn)]

    def exchange_of(self, turn: UserMessage | AssistantTurn) -> int:
        """The index of the exchange a prompt or reply belongs to."""
        users = 0
        for w in self.children:
            if isinstance(w, UserMessage):
                users += 1
            if w is turn:
                return users - 1
        raise ValueError("not in this transcript")

    def mark_left_out(self, turns: int, keep_first: bool = False) -> None:
        """Mark the prompts the model no longer sees ("not sent: over the context")."""
        start = 1 if keep_first else 0
        for i, user in enumerate(self.query(UserMessage)):
            user.left_out = start <= i < start + turns

    async def remove_last_exchange(self) -> None:
        """Remove the last prompt and what follows it."""
        users = len(self.query(UserMessage))
        if users:
            await self.remove_children(self.from_exchange(users - 1))
