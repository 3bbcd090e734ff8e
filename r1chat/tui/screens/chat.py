"""The chat screen: transcript, prompt, sidebar, status bar, and the keys that drive them.

The model runs in a child process (`EngineProcess`, r1chat.session.process), where an
`EngineThread` runs `run_turn` and saves the reply to History as it streams; its items
come back through `Inbox` (r1chat.tui.inbox) in batches, and each batch goes to the live
`AssistantTurn`: one reasoning append, one Markdown append, one title update per batch.

The screen's state that the status bar shows (`info`, `context_used`, `last_stats`,
`load_error`) is reactive: the status bar follows it through the watchers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.reactive import var
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Static

from r1chat.config.file import Config
from r1chat.config.settings import Settings
from r1chat.core.errors import R1ChatError
from r1chat.core.events import Done, EngineInfo, Notice, Stats
from r1chat.core.messages import Message as ChatMessage
from r1chat.core.printable import printable
from r1chat.engine.base import Engine
from r1chat.history.store import History
from r1chat.session.conversation import Conversation, Exchange
from r1chat.session.items import (
    ContextUsed,
    EngineLost,
    Failed,
    Item,
    JobEnded,
    LeftOut,
    Loaded,
    LoadFailed,
    Loading,
    Prefilled,
    SaveNotice,
)
from r1chat.session.process import EngineProcess
from r1chat.session.worker import EngineThread, ReplyJob, log_to_file
from r1chat.tui import draft, preferences
from r1chat.tui.inbox import Inbox
from r1chat.tui.screens.model_rows import first_run_hint
from r1chat.tui.screens.reader import ReaderScreen
from r1chat.tui.screens.settings import SettingsScreen
from r1chat.tui.widgets.prompt_input import PromptInput
from r1chat.tui.widgets.reasoning_log import ReasoningLog
from r1chat.tui.widgets.reasoning_pane import ReasoningPane
from r1chat.tui.widgets.sidebar import Sidebar
from r1chat.tui.widgets.status_bar import StatusBar
from r1chat.tui.widgets.transcript import Banner, Transcript
from r1chat.tui.widgets.turns import AssistantTurn, UserMessage

WELCOME = (
    "Ask anything. Enter sends · ctrl+j new line · esc stops · ctrl+r regenerates · "
    "ctrl+t shows/hides reasoning · ctrl+s chats · ctrl+p settings and commands"
)


class ChatScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stop", "Stop", show=True),
        Binding("escape", "back", "Back", show=False),
        Binding("ctrl+n", "new_chat", "New"),
        Binding("ctrl+r", "regenerate", "Regenerate"),
        Binding("ctrl+t", "toggle_reasoning", "Reasoning"),
        Binding("ctrl+s,f2", "toggle_sidebar", "Chats"),
        Binding("ctrl+g", "copy_answer", "Copy answer", show=False),
        Binding("ctrl+l,f3", "read_reasoning", "Read reasoning", show=False),
        Binding("ctrl+o", "models", "Models"),
    ]

    info: var[EngineInfo | None] = var(None)
    """The loaded model (None while loading or after a failed load)."""
    load_error: var[str | None] = var(None, always_update=True)
    context_used: var[int | None] = var(None)
    left_out: var[int] = var(0)  # earlier exchanges the last prompt left out (over the context)
    prefilled = 0  # tokens the last idle-time prefill read ahead of the next prompt
    """Tokens the conversation re-sends with the next prompt."""
    last_stats: var[Stats | None] = var(None)
    current: var[ReplyJob | None] = var(None)
    """The reply streaming now."""

    def __init__(
        self,
        settings: Settings,
        *,
        config: Config,
        history: History,
        conversation_id: int | None,
        open_engine: Callable[[Settings], Engine] | None,
        clock: Callable[[], float],
    ) -> None:
        """`open_engine` runs the model in this process, on a thread, through that
        function; by default it runs in a child process (`EngineProcess`)."""
        super().__init__()
        self.settings = settings
        self.config = config
        self.history = history
        self.display_mode = preferences.display_of(config)
        self.conversation = Conversation(history)
        self._initial_conversation = conversation_id
        self._clock = clock
        self.inbox = Inbox(self, self._handle, self._after_drain)
        self.engine: EngineThread | EngineProcess
        if open_engine is None:
            self.engine = EngineProcess(self.inbox.queue, history.path, self.inbox.wake)
        else:
            self.engine = EngineThread(self.inbox.queue, history, open_engine, self.inbox.wake)
        self._loading_since: float | None = None
        self._load_job = 0
        self._live: dict[int, tuple[AssistantTurn, Exchange]] = {}
        self._after_reply: Callable[[], object] | None = None
        self.editing = False
        self._handlers: dict[type, Callable[[int, Item], Awaitable[None]]] = {
            JobEnded: self._on_job_ended,
            Loading: self._on_load,
            Loaded: self._on_load,
            LoadFailed: self._on_load,
            ContextUsed: self._on_context,
            LeftOut: self._on_left_out,
            Prefilled: self._on_prefilled,
            EngineLost: self._on_engine_lost,
            SaveNotice: self._on_save_notice,
        }
        log_to_file()

    # -- layout -----------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            yield Sidebar(self.history, id="sidebar")
            with Vertical(id="main"):
                yield Transcript(id="transcript")
                yield Static("", id="load-error")
                yield PromptInput(id="prompt")
        yield StatusBar(id="status")
        yield Footer()

    @property
    def transcript(self) -> Transcript:
        return self.query_one("#transcript", Transcript)

    @property
    def prompt(self) -> PromptInput:
        return self.query_one("#prompt", PromptInput)

    @property
    def status(self) -> StatusBar:
        return self.query_one("#status", StatusBar)

    @property
    def sidebar(self) -> Sidebar:
        return self.query_one("#sidebar", Sidebar)

    async def on_mount(self) -> None:
        self.query_one("#sidebar").display = False
        if self.app.is_headless:  # tests and screenshots: a steady cursor
            self.prompt.cursor_blink = False
        self.prompt.focus()
        self._load_model()
        if self._initial_conversation is not None:
            await self.open_conversation(self._initial_conversation)
        else:
            await self._show_welcome()
        if kept := draft.take():
            self.prompt.insert(kept)
            self.notify("Your unsent draft from last time is back in the input.", timeout=5)

    async def _show_welcome(self) -> None:
        await self.transcript.mount(Banner(WELCOME, classes="welcome"))

    def on_unmount(self) -> None:
        if self.current is not None:
            self.current.control.cancel()
        self.engine.stop(timeout=3.0)

    def keep_draft(self) -> str | None:
        """Keep what is typed and not sent for the next start (quitting); why not, if it
        could not be kept."""
        return draft.keep(self.prompt.text)

    # -- the status bar follows the state -------------------------------------------

    def _show_status(self) -> None:
        if not self.is_mounted or self._loading_since is not None:
            return  # while loading, the drain ticks show the spinner
        if self.info is not None:
            n = self.left_out
            note = f"{n} earlier turn{'s' if n != 1 else ''} not sent" if n else ""
            self.status.show_ready(self.info, self.context_used, self.last_stats, note)
        elif self.load_error is not None:
            self.status.show_error("no model loaded: ctrl+o pulls, imports or picks one")

    watch_info = watch_load_error = watch_context_used = watch_last_stats = _show_status
    watch_left_out = _show_status

    def watch_current(self) -> None:
        self.refresh_bindings()

    # -- the inbox --------------------------------------------------------------------

    async def on_inbox_wake(self, message: Inbox.Wake) -> None:
        await self.inbox.drain_soon()

    def _after_drain(self) -> None:
        for turn, _ in self._live.values():
            turn.tick()
        if self._loading_since is not None:
            self.status.show_loading(self.settings.model or "", self._clock() - self._loading_since)

    async def drain_now(self) -> None:
        """Process what is queued (tests and benchmarks call this between pauses)."""
        await self.inbox.drain()

    async def _handle(self, job_id: int, item: Item) -> None:
        handler = self._handlers.get(type(item))
        if handler is not None:
            await handler(job_id, item)
        elif (live := self._live.get(job_id)) is not None:
            await self._to_turn(*live, item)
        # else: a reply whose turn was cleared away (new chat): History has it

    async def _to_turn(self, turn: AssistantTurn, ex: Exchange, item: Item) -> None:
        await turn.apply(item)
        if isinstance(item, Done):
            ex.answer, ex.reasoning = item.content, item.reasoning
            ex.stats, ex.finish_reason = item.stats.to_dict(), item.finish_reason
            if item.stats.thinking_tokens + item.stats.answer_tokens:
                self.last_stats = item.stats
        elif isinstance(item, Failed):
            if turn.reasoning.text or turn.answer.has_text:
                # it broke mid-reply (the model process died): keep what arrived
                self._try(lambda: self.conversation.keep_partial(
                    ex, turn.answer.text, turn.reasoning.text))  # fmt: skip
            else:  # it never started: nothing is saved, the prompt goes back to the input
                await self._withdraw(ex, item.message)
        elif isinstance(item, Notice):
            self.notify(item.message, severity="warning", timeout=6)

    async def _on_save_notice(self, job_id: int, item: Item) -> None:
        assert isinstance(item, SaveNotice)
        if item.problem:
            self.notify(item.message, severity="warning", timeout=10)
        else:
            self.notify(item.message, timeout=5)

    async def _on_job_ended(self, job_id: int, item: Item) -> None:
        self.inbox.job_ended()
        if self.current is not None and self.current.id == job_id:
            self.current = None
            self._live.pop(job_id, None)
            if self.sidebar.display:
                await self.refresh_sidebar()
            action, self._after_reply = self._after_reply, None
            if action is not None:
                result = action()
                if asyncio.iscoroutine(result):
                    await result
        else:
            self._live.pop(job_id, None)

    async def _on_context(self, job_id: int, item: Item) -> None:
        assert isinstance(item, ContextUsed)
        self.context_used = item.tokens

    async def _on_prefilled(self, job_id: int, item: Item) -> None:
        assert isinstance(item, Prefilled)
        self.prefilled = item.tokens  # the next prompt's cached_tokens will show it

    async def _on_left_out(self, job_id: int, item: Item) -> None:
        assert isinstance(item, LeftOut)
        self._mark_left_out(item.turns, item.keep_first)
        first = "after the first " if item.keep_first else ""
        self.notify(f"The conversation is over the context: the {item.turns} oldest turn"
                    f"{'s' if item.turns != 1 else ''} {first}were left out of this prompt "
                    "(they stay in the history).", timeout=6)  # fmt: skip

    def _mark_left_out(self, turns: int, keep_first: bool = False) -> None:
        """Mark the prompts the model no longer sees ("not sent: over the context")."""
        start = 1 if keep_first else 0
        for i, user in enumerate(self.transcript.query(UserMessage)):
            user.left_out = start <= i < start + turns
        self.left_out = turns

    async def _on_engine_lost(self, job_id: int, item: Item) -> None:
        assert isinstance(item, EngineLost)
        self.notify(item.message, title="Model", severity="error", timeout=10)
        self._load_model()  # in a new process

    # -- the model --------------------------------------------------------------------

    def _load_model(self) -> None:
        self._load_job = self.engine.load(self.settings)
        self._loading_since = self._clock()
        self.info = None
        self.inbox.job_started()
        self.status.show_loading(self.settings.model or "", 0)

    async def _on_load(self, job_id: int, item: Item) -> None:
        if job_id != self._load_job or isinstance(item, Loading):
            return
        error = self.query_one("#load-error", Static)
        self._loading_since = None
        if isinstance(item, Loaded):
            self.load_error = None
            self.info = item.info
            error.display = False
            if self.conversation.exchanges and self.context_used is None:
                self._measure()
        elif isinstance(item, LoadFailed):
            self.load_error = item.message
            asked = self.settings.endpoint or self.settings.model  # then its error is news
            first_run = None if asked else first_run_hint()
            if first_run is not None:
                error.update(first_run)
            else:
                message = printable(item.message)
                error.update(Content.assemble(("Cannot load the model: ", "bold"), message))
            error.display = True

    def _measure(self) -> None:
        if not self.conversation.exchanges:
            return
        messages = self.conversation.messages()
        answered = self.conversation.exchanges[-1]
        if answered.answered:
            messages = (*messages, ChatMessage("assistant", answered.answer))
        request = self.conversation.request(self.settings)
        self.engine.measure(messages, request, self.settings.overflow)
        self.inbox.job_started()

    # -- sending ----------------------------------------------------------------------

    def _try(self, fn: Callable[[], object]) -> bool:
        """Run a History change; a failure becomes a notification, not a traceback."""
        try:
            fn()
        except R1ChatError as e:
            self.notify(str(e), title="History", severity="error", timeout=8)
            return False
        return True

    @property
    def model_name(self) -> str:
        return self.info.model if self.info is not None else (self.settings.model or "")

    @on(PromptInput.Submitted)
    async def _submitted(self, event: PromptInput.Submitted) -> None:
        await self.send(event.text)

    async def send(self, text: str) -> None:
        """Send a prompt (what Enter does)."""
        if not text.strip():
            return
        if self.current is not None:
            self.notify("Still answering: press esc to stop it first.", timeout=3)
            return
        if self.load_error is not None:
            self.notify(f"No model to answer: {self.load_error}", severity="error", timeout=10)
            return
        if self.editing:
            await self._drop_last_exchange()
        self.editing = False
        self.prompt.border_subtitle = ""
        exchange: Exchange | None = None

        def add() -> None:
            nonlocal exchange
            exchange = self.conversation.add_prompt(text, self.model_name, self.settings)

        if not self._try(add) or exchange is None:
            return
        self.prompt.clear()
        await self.transcript.query(".welcome").remove()
        await self.transcript.mount(UserMessage(text))
        await self._start_reply(exchange)

    async def _start_reply(self, ex: Exchange) -> None:
        self._mark_left_out(0)  # the engine says again what this prompt leaves out
        turn = AssistantTurn(collapsed=self.display_mode == "collapsed", clock=self._clock)
        await self.transcript.mount(turn)
        message_id: int | None = None

        def start() -> None:
            nonlocal message_id
            message_id = self.conversation.start_reply(ex, self.model_name, self.settings)

        if not self._try(start):
            message_id = None
        request = self.conversation.request(self.settings)
        job = self.engine.reply(request, self.settings.guards, message_id, self.settings.overflow)
        self.current = job
        self._live[job.id] = (turn, ex)
        self.inbox.job_started()
        waiting = "Waiting for the model to load…" if self.info is None else "Reading the prompt…"
        turn.start(think=self.settings.think, waiting=waiting)
        self.transcript.follow()

    async def _withdraw(self, ex: Exchange, why: str) -> None:
        """A send that failed before any reply: unsave it, and give the text back."""
        if self.conversation.exchanges and self.conversation.exchanges[-1] is ex:
            self._try(self.conversation.withdraw_last)
            await self._remove_last_exchange_widgets()
        if not self.prompt.text:
            self.prompt.insert(ex.prompt)
        self.notify(f"{why} (not sent: your prompt is back in the input)", severity="error",
                    timeout=10)  # fmt: skip

    async def _drop_last_exchange(self) -> None:
        """Remove the last prompt and its reply (from the screen and from History)."""
        self._try(self.conversation.drop_last)
        await self._remove_last_exchange_widgets()

    async def _remove_last_exchange_widgets(self) -> None:
        children = list(self.transcript.children)
        users = [i for i, w in enumerate(children) if isinstance(w, UserMessage)]
        if users:
            await self.transcript.remove_children(children[users[-1] :])

    # -- actions ----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":  # shown dimmed in the footer while nothing streams
            return True if self.current is not None else None
        return True

    def action_stop(self) -> None:
        """Esc while a reply streams: stop it (the partial reply is kept)."""
        if self.current is not None:
            self.current.control.cancel()

    async def action_back(self) -> None:
        """Esc otherwise: close the sidebar, or cancel editing the last prompt."""
        if self.sidebar.display and self.sidebar.has_focus_within:
            await self.action_toggle_sidebar()
        elif self.editing:
            self.editing = False
            self.prompt.clear()
            self.prompt.border_subtitle = ""

    def action_read_reasoning(self) -> None:
        """The last reply's whole reasoning in the reader view (search, full height)."""
        turns = [t for t in self.transcript.query(AssistantTurn) if t.reasoning.text]
        if not turns:
            self.notify("No reasoning to read yet.", timeout=3)
            return
        turns[-1].reasoning.read()

    def on_reasoning_log_read_requested(self, event: ReasoningLog.ReadRequested) -> None:
        event.stop()
        pane = event.log.parent
        if isinstance(pane, ReasoningPane) and pane.text:
            self.app.push_screen(ReaderScreen(pane.title, pane.text))

    async def action_regenerate(self) -> None:
        if not self.conversation.exchanges:
            self.notify("Nothing to regenerate yet.", timeout=3)
            return
        if self.current is not None:
            self.current.control.cancel()
            self._after_reply = self.action_regenerate
            return
        ex = self.conversation.exchanges[-1]
        turns = self.transcript.query(AssistantTurn)
        if turns and len(self.transcript.query(UserMessage)) == len(self.conversation.exchanges):
            last_turn = turns.last()
            if list(self.transcript.children)[-1] is last_turn:
                await last_turn.remove()
        self._try(lambda: self.conversation.drop_reply(ex))
        await self._start_reply(ex)

    async def action_new_chat(self) -> None:
        if self.current is not None:
            self.current.control.cancel()
            self.current = None
        self._live.clear()
        self.conversation = Conversation(self.history)
        self.editing = False
        self.context_used = None
        self.left_out = 0
        await self.transcript.remove_children()
        await self._show_welcome()
        if self.prompt.text.strip():  # a draft is never thrown away: it is for the new chat
            self.notify("New chat: your draft stays in the input.", timeout=3)
        self.prompt.focus()
        if self.sidebar.display:
            await self.refresh_sidebar()

    def action_toggle_reasoning(self) -> None:
        self.display_mode = "show" if self.display_mode == "collapsed" else "collapsed"
        collapsed = self.display_mode == "collapsed"
        for turn in self.transcript.query(AssistantTurn):
            turn.set_collapsed(collapsed)
        try:
            preferences.save_display(self.config, self.display_mode)
        except (OSError, TypeError) as e:
            self.notify(f"could not save the config: {e}", severity="error")

    def action_copy_answer(self) -> None:
        for ex in reversed(self.conversation.exchanges):
            if ex.answer:
                self.app.copy_to_clipboard(ex.answer)
                self.notify(  # OSC 52 has no reply: whether it landed is the terminal's say
                    "Sent the last answer to the terminal's clipboard (OSC 52: most terminals "
                    "take it; macOS Terminal, and tmux without set-clipboard, ignore it).",
                    timeout=5,
                )
                return
        self.notify("No answer to copy yet.", timeout=2)

    @on(PromptInput.EditLast)
    def _edit_last(self) -> None:
        if self.current is not None or not self.conversation.exchanges:
            return
        self.editing = True
        self.prompt.load_text(self.conversation.exchanges[-1].prompt)
        self.prompt.move_cursor(self.prompt.document.end)
        self.prompt.border_subtitle = "editing your last prompt · Enter resends · esc cancels"

    @on(PromptInput.Page)
    def _page(self, event: PromptInput.Page) -> None:
        if event.direction < 0:
            self.transcript.scroll_page_up()
        else:
            self.transcript.scroll_page_down()

    # -- conversations ----------------------------------------------------------------

    async def action_toggle_sidebar(self) -> None:
        sidebar = self.sidebar
        sidebar.display = not sidebar.display
        if sidebar.display:
            await self.refresh_sidebar()
            sidebar.query_one("#search").focus()  # typing searches; the list's keys act there
        else:
            self.prompt.focus()

    async def refresh_sidebar(self) -> None:
        await self.sidebar.refresh_list(self.conversation.id)

    @on(Sidebar.Open)
    async def _open(self, event: Sidebar.Open) -> None:
        await self.open_conversation(event.conversation_id)
        self.prompt.focus()

    async def open_conversation(self, conversation_id: int) -> None:
        try:
            conversation = Conversation.load(self.history, conversation_id)
        except R1ChatError as e:
            self.notify(str(e), title="History", severity="error")
            return
        await self.action_new_chat()
        self.conversation = conversation
        await self.transcript.remove_children()
        widgets: list[Widget] = []
        collapsed = self.display_mode == "collapsed"
        for ex in conversation.exchanges:
            widgets.append(UserMessage(ex.prompt))
            if ex.reply_id is not None:
                widgets.append(AssistantTurn.stored(
                    reasoning=ex.reasoning, answer=ex.answer, stats=ex.stats,
                    finish_reason=ex.finish_reason, collapsed=collapsed,
                ))  # fmt: skip
        await self.transcript.mount_all(widgets)
        last = conversation.exchanges[-1].stats or {} if conversation.exchanges else {}
        self._mark_left_out(int(last.get("turns_left_out") or 0), self.settings.overflow.keep_first)
        self.transcript.scroll_end(animate=False)
        self.context_used = None
        self.last_stats = None
        if self.info is not None:
            self._measure()
        if self.sidebar.display:
            await self.refresh_sidebar()

    @on(Sidebar.Delete)
    async def _delete(self, event: Sidebar.Delete) -> None:
        """Delete a conversation the user confirmed (a new chat first if it is open)."""
        if event.conversation_id == self.conversation.id:
            await self.action_new_chat()
        self._try(lambda: self.history.delete(event.conversation_id))
        await self.refresh_sidebar()

    # -- settings ---------------------------------------------------------------------

    def open_settings(self, focus: str | None = None) -> None:
        old = preferences.prefs_of(self.settings, self.display_mode)

        def done(new: preferences.ChatPrefs | None) -> None:
            if new is not None:
                self.apply_prefs(old, new)

        self.app.push_screen(SettingsScreen(old, focus), done)

    def apply_prefs(self, old: preferences.ChatPrefs, new: preferences.ChatPrefs) -> None:
        self.settings = preferences.apply(self.settings, new)
        if new.display != self.display_mode:
            self.action_toggle_reasoning()
        try:
            changed = preferences.save(self.config, old, new)
        except (OSError, TypeError) as e:
            self.notify(f"could not save the config: {e}", severity="error")
            changed = []
        if changed:
            self.notify("Settings saved.", timeout=2)
        if new.model != old.model or new.n_ctx != old.n_ctx:
            self.context_used = None
            self._load_model()

    # -- models -----------------------------------------------------------------------

    def action_models(self) -> None:
        """The model manager (ctrl+o): pull, delete, set the default, use a model now."""
        from r1chat.tui.screens.models import ModelsScreen

        if any(isinstance(s, ModelsScreen) for s in self.app.screen_stack):
            return
        screen = ModelsScreen(
            config=self.config, in_use=self.settings.model, n_ctx=self.settings.n_ctx
        )
        self.app.push_screen(screen, self.use_model)

    def use_model(self, name: str | None) -> None:
        """Load another model for the chat (a catalog or imported name, or a GGUF path),
        as the model manager's "use now" does; the default in the config stays."""
        if not name or (name == self.settings.model and self.load_error is None):
            return
        self.settings = replace(self.settings, model=name, endpoint=None)
        self.context_used = None
        self._load_model()
