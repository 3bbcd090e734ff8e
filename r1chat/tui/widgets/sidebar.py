"""The conversations sidebar: newest first, full-text search, open / rename / delete.

It reads History itself (the list, search hits, renames); opening and deleting a chat
change the open conversation, so those go to the screen as messages (`Open`, and
`Delete` once the user confirmed it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Input, Label, ListItem, ListView, Static

from r1chat.core.errors import R1ChatError
from r1chat.core.printable import one_line
from r1chat.history.records import Conversation, SearchHit
from r1chat.history.store import History
from r1chat.tui.widgets.dialogs import ConfirmScreen, TextPromptScreen

MARK = ("\x01", "\x02")  # snippet match markers (never typed by a user)


class ConversationItem(ListItem):
    def __init__(
        self,
        conversation_id: int,
        title: str,
        detail: str | Content,
        *,
        current: bool,
        message_id: int | None = None,
    ) -> None:
        super().__init__(classes="-current" if current else "")
        self.conversation_id = conversation_id
        self.message_id = message_id  # a search hit's message (its branch is opened)
        self.title_text = one_line(title)
        self._detail = detail if isinstance(detail, Content) else Content(one_line(detail))

    def compose(self) -> ComposeResult:
        yield Label(Content(self.title_text), classes="conv-title")
        if self._detail:
            yield Label(self._detail, classes="conv-detail")


def _detail(c: Conversation) -> str:
    """`ask · 2 prompts · model` under a conversation's title."""
    if not c.model:
        return ""
    parts = ["ask"] if c.source == "ask" else []
    return " · ".join([*parts, f"{c.turns} prompt{'s' if c.turns != 1 else ''}", c.model])


def _snippet(text: str) -> Content:
    """A search snippet with its matches highlighted."""
    parts: list[tuple[str, str] | str] = []
    rest = text
    while MARK[0] in rest:
        before, _, tail = rest.partition(MARK[0])
        hit, _, rest = tail.partition(MARK[1])
        parts += [one_line(before), (one_line(hit), "bold reverse")]
    parts.append(one_line(rest))
    return Content.assemble(*parts)


class ConversationList(ListView):
    """The list of chats. Its one-key actions work only while it has the focus (the
    footer shows them then), so typing a search can never rename or delete."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r,f2", "rename", "Rename", show=True),
        Binding("d,delete", "delete", "Delete", show=True),
    ]

    def action_rename(self) -> None:
        self._sidebar().action_rename()

    def action_delete(self) -> None:
        self._sidebar().action_delete()

    def _sidebar(self) -> Sidebar:
        sidebar = self.parent
        assert isinstance(sidebar, Sidebar)
        return sidebar


class SearchBox(Input):
    """The search field; Down moves into the list."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("down", "to_list", "List", show=False)]

    def action_to_list(self) -> None:
        self.screen.focus_next(ConversationList)


class Sidebar(Vertical):
    class Open(Message):
        """Open this conversation in the chat (on the branch holding `message_id`, if
        given: a search hit)."""

        def __init__(self, conversation_id: int, message_id: int | None = None) -> None:
            super().__init__()
            self.conversation_id = conversation_id
            self.message_id = message_id

    class Delete(Message):
        """The user confirmed deleting this conversation."""

        def __init__(self, conversation_id: int) -> None:
            super().__init__()
            self.conversation_id = conversation_id

    def __init__(self, history: History, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.history = history
        self.current: int | None = None  # the chat's conversation, marked in the list
        self._search_serial = 0

    def on_mount(self) -> None:
        if self.app.is_headless:  # tests and screenshots: a steady cursor
            self.query_one("#search", Input).cursor_blink = False

    def compose(self) -> ComposeResult:
        yield Static("Chats", classes="sidebar-title")
        yield SearchBox(placeholder="Search chats…", id="search", compact=True)
        yield ConversationList(id="conversations")

    @property
    def listing(self) -> ConversationList:
        return self.query_one("#conversations", ConversationList)

    @property
    def search_text(self) -> str:
        return self.query_one("#search", Input).value

    async def refresh_list(self, current: int | None) -> None:
        """Show the conversations (or the search hits), marking `current`."""
        self.current = current
        text = self.search_text
        try:
            if text.strip():
                await self.show_hits(self.history.search(text, mark=MARK), current)
            else:
                await self.show_conversations(self.history.list_conversations(), current)
        except R1ChatError as e:
            self.notify(str(e), title="History", severity="error")

    async def show_conversations(
        self, conversations: list[Conversation], current: int | None
    ) -> None:
        items = [
            ConversationItem(
                c.id,
                c.display_title,
                _detail(c),
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
            items.append(
                ConversationItem(
                    h.conversation_id,
                    title,
                    _snippet(h.snippet),
                    current=h.conversation_id == current,
                    message_id=h.message_id,
                )
            )
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
            self.post_message(self.Open(event.item.conversation_id, event.item.message_id))

    @on(Input.Changed, "#search")
    async def _search(self, event: Input.Changed) -> None:
        event.stop()
        self._search_serial += 1
        serial = self._search_serial
        await asyncio.sleep(0.15)  # wait for the typing to pause
        if serial == self._search_serial:
            await self.refresh_list(self.current)

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.listing.focus()

    def action_rename(self) -> None:
        if (cid := self.selected_id()) is not None:
            self.rename(cid)

    def action_delete(self) -> None:
        if (cid := self.selected_id()) is not None:
            self.confirm_delete(cid)

    def rename(self, conversation_id: int) -> None:
        """Ask for a new title, then rename the conversation."""
        try:
            current = self.history.conversation(conversation_id).title
        except R1ChatError as e:
            self.notify(str(e), severity="error")
            return

        async def done(title: str | None) -> None:
            if title is None or not title.strip():
                return
            try:
                self.history.rename(conversation_id, title)
            except R1ChatError as e:
                self.notify(str(e), title="History", severity="error", timeout=8)
            if self.display:
                await self.refresh_list(self.current)

        self.app.push_screen(TextPromptScreen("Rename this chat:", current), done)

    def confirm_delete(self, conversation_id: int) -> None:
        """Ask, naming the chat; `Delete` goes to the screen if the user says yes."""
        try:
            title = self.history.conversation(conversation_id).display_title
        except R1ChatError as e:
            self.notify(str(e), severity="error")
            return

        def done(yes: bool | None) -> None:
            if yes:
                self.post_message(self.Delete(conversation_id))

        question = f"Delete the chat “{title}” and all its messages?"
        self.app.push_screen(ConfirmScreen(question), done)
