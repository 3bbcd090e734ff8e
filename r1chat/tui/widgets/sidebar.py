"""The conversations sidebar: newest first, full-text search, open / rename / delete."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Input, Label, ListItem, ListView, Static

from r1chat.history.store import Conversation, SearchHit

MARK = ("\x01", "\x02")  # snippet match markers (never typed by a user)


class ConversationItem(ListItem):
    def __init__(
        self, conversation_id: int, title: str, detail: str | Content, *, current: bool
    ) -> None:
        super().__init__(classes="-current" if current else "")
        self.conversation_id = conversation_id
        self.title_text = title
        self._detail = detail if isinstance(detail, Content) else Content(detail)

    def compose(self) -> ComposeResult:
        yield Label(Content(self.title_text), classes="conv-title")
        if self._detail:
            yield Label(self._detail, classes="conv-detail")


def _snippet(text: str) -> Content:
    """A search snippet with its matches highlighted."""
    parts: list[tuple[str, str] | str] = []
    rest = text
    while MARK[0] in rest:
        before, _, tail = rest.partition(MARK[0])
        hit, _, rest = tail.partition(MARK[1])
        parts += [before, (hit, "bold reverse")]
    parts.append(rest)
    return Content.assemble(*parts)


class Sidebar(Vertical):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r,f2", "rename", "Rename", show=True),
        Binding("d,delete", "delete", "Delete", show=True),
    ]

    class Open(Message):
        def __init__(self, conversation_id: int) -> None:
            super().__init__()
            self.conversation_id = conversation_id

    class Rename(Open):
        pass

    class Delete(Open):
        pass

    class SearchChanged(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def compose(self) -> ComposeResult:
        yield Static("Chats", classes="sidebar-title")
        yield Input(placeholder="Search chats…", id="search", compact=True)
        yield ListView(id="conversations")

    @property
    def listing(self) -> ListView:
        return self.query_one("#conversations", ListView)

    @property
    def search_text(self) -> str:
        return self.query_one("#search", Input).value

    async def show_conversations(
        self, conversations: list[Conversation], current: int | None
    ) -> None:
        items = [
            ConversationItem(
                c.id,
                c.display_title,
                f"{c.turns} prompt{'s' if c.turns != 1 else ''} · {c.model}" if c.model else "",
                current=c.id == current,
            )
            for c in conversations
        ]
        await self._fill(items, "No chats yet" if not items else "")

    async def show_hits(self, hits: list[SearchHit], current: int | None) -> None:
        seen: set[int] = set()
        items: list[ListItem] = []
        for h in hits:
            if h.conversation_id in seen:
                continue
            seen.add(h.conversation_id)
            title = h.title or "(untitled)"
            items.append(ConversationItem(h.conversation_id, title, _snippet(h.snippet),
                                          current=h.conversation_id == current))  # fmt: skip
        await self._fill(items, "No match" if not items else "")

    async def _fill(self, items: Sequence[ListItem], empty: str) -> None:
        view = self.listing
        index = view.index
        with self.app.batch_update():
            await view.clear()
            if items:
                await view.extend(items)
            else:
                await view.append(ListItem(Label(empty, classes="conv-detail"), disabled=True))
        if items:
            view.index = min(index or 0, len(items) - 1)

    def selected_id(self) -> int | None:
        item = self.listing.highlighted_child
        return item.conversation_id if isinstance(item, ConversationItem) else None

    @on(ListView.Selected, "#conversations")
    def _selected(self, event: ListView.Selected) -> None:
        event.stop()
        if isinstance(event.item, ConversationItem):
            self.post_message(self.Open(event.item.conversation_id))

    @on(Input.Changed, "#search")
    def _search(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.SearchChanged(event.value))

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.listing.focus()

    def action_rename(self) -> None:
        if (cid := self.selected_id()) is not None:
            self.post_message(self.Rename(cid))

    def action_delete(self) -> None:
        if (cid := self.selected_id()) is not None:
            self.post_message(self.Delete(cid))
