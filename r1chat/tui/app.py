"""The chat app: transcript, prompt, sidebar, status bar, and the keys that drive them.

How a reply reaches the screen: the model runs in a child process (`EngineProcess`, in
r1chat.session.process), where an `EngineThread` runs `run_turn` and saves the reply to
History as it streams. Its events come back over a pipe in batched frames; a reader
thread puts them on `self.inbox` (a SimpleQueue: putting is cheap and never blocks).
While a job is out, a timer drains the queue every
`DRAIN_FAST_S` (`DRAIN_SLOW_S` when tokens pour in), joins runs of deltas (`batch`), and
hands each batch to the live `AssistantTurn`: one reasoning append, one Markdown append,
one title update per batch, whatever the number of tokens in it. No widget's work per
batch depends on how long the reply already is.
"""

from __future__ import annotations

import asyncio
import queue
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Footer, Static

from r1chat.config.file import Config
from r1chat.config.settings import Settings
from r1chat.core.errors import R1ChatError
from r1chat.core.events import Done, EngineInfo, Notice, Stats
from r1chat.engine.base import Engine
from r1chat.history.store import History
from r1chat.session.conversation import Conversation, Exchange
from r1chat.session.items import (
    AnswerChunk,
    ContextUsed,
    EngineLost,
    Failed,
    Item,
    JobEnded,
    Loaded,
    LoadFailed,
    Loading,
    ThinkingChunk,
    batch,
)
from r1chat.session.process import EngineProcess
from r1chat.session.worker import EngineThread, ReplyJob, log_to_file
from r1chat.tui import preferences, titles
from r1chat.tui.screens.dialogs import ConfirmScreen, TextPromptScreen
from r1chat.tui.screens.settings import FIELDS, SettingsScreen
from r1chat.tui.widgets.prompt_input import PromptInput
from r1chat.tui.widgets.sidebar import MARK, Sidebar
from r1chat.tui.widgets.status_bar import StatusBar
from r1chat.tui.widgets.transcript import Banner, Transcript
from r1chat.tui.widgets.turns import AssistantTurn, UserMessage

DRAIN_FAST_S = 1 / 30
"""Delay before the next batch while tokens trickle in (a slow model: show each promptly)."""
DRAIN_SLOW_S = 1 / 15
"""Delay before the next batch while tokens pour in: the UI's work per batch hardly
depends on its size, so a fast stream costs it a fixed 15 frames a second."""
FAST_BATCH_TOKENS = 16

WELCOME = (
    "Ask anything. Enter sends · ctrl+j new line · esc stops · ctrl+r regenerates · "
    "ctrl+t shows/hides reasoning · ctrl+s chats · ctrl+p settings and commands"
)


class ChatApp(App[None]):
    CSS_PATH = str(Path(__file__).with_name("app.tcss"))
    TITLE = "r1chat"
    ENABLE_COMMAND_PALETTE = True

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stop", "Stop", show=True),
        Binding("escape", "back", "Back", show=False),
        Binding("ctrl+n", "new_chat", "New"),
        Binding("ctrl+r", "regenerate", "Regenerate"),
        Binding("ctrl+t", "toggle_reasoning", "Reasoning"),
        Binding("ctrl+s,f2", "toggle_sidebar", "Chats"),
        Binding("ctrl+g", "copy_answer", "Copy answer", show=False),
        Binding("ctrl+o", "models", "Models"),
    ]

    def __init__(
        self,
        settings: Settings,
        *,
        config: Config | None = None,
        history: History | None = None,
        conversation_id: int | None = None,
        open_engine: Callable[[Settings], Engine] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`open_engine` runs the model in this process, on a thread, through that
        function; by default it runs in a child process (`EngineProcess`)."""
        super().__init__()
        self.settings = settings
        self.config = config if config is not None else Config.load()
        self.history = history if history is not None else History()
        self.display_mode = preferences.display_of(self.config)
        self.conversation = Conversation(self.history)
        self._initial_conversation = conversation_id
        self._clock = clock
        self.inbox: queue.SimpleQueue[tuple[int, Item]] = queue.SimpleQueue()
        self.engine: EngineThread | EngineProcess
        if open_engine is None:
            self.engine = EngineProcess(self.inbox, self.history.path, self._wake)
        else:
            self.engine = EngineThread(self.inbox, self.history, open_engine)
        self.info: EngineInfo | None = None
        self.load_error: str | None = None
        self._loading_since: float | None = None
        self._load_job = 0
        self.current: ReplyJob | None = None
        self._live: dict[int, tuple[AssistantTurn, Exchange]] = {}
        self._outstanding = 0
        self._after_reply: Callable[[], object] | None = None
        self.editing = False
        self.context_used: int | None = None
        self.last_stats: Stats | None = None
        self._drain_timer: Timer | None = None
        self._search_serial = 0
        log_to_file()

    # -- layout -----------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            yield Sidebar(id="sidebar")
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
        if self.is_headless:  # tests and screenshots: a steady cursor
            self.prompt.cursor_blink = False
        self.prompt.focus()
        self._load_model()
        if self._initial_conversation is not None:
            await self.open_conversation(self._initial_conversation)
        else:
            await self._show_welcome()

    async def _show_welcome(self) -> None:
        await self.transcript.mount(Banner(WELCOME, classes="welcome"))

    def on_unmount(self) -> None:
        if self.current is not None:
            self.current.control.cancel()
        self.engine.stop(timeout=3.0)

    # -- the inbox --------------------------------------------------------------------

    def _job_started(self) -> None:
        self._outstanding += 1
        self._schedule_drain(DRAIN_FAST_S)

    class _Wake(Message):
        """A job ended (posted from the engine's reader thread): drain now."""

    def _wake(self) -> None:
        self.post_message(self._Wake())

    async def on_chat_app__wake(self, message: _Wake) -> None:
        if self._drain_timer is not None:
            self._drain_timer.stop()
            self._drain_timer = None
        await self._drain_tick()

    def _schedule_drain(self, delay: float) -> None:
        if self._drain_timer is None:
            self._drain_timer = self.set_timer(delay, self._drain_tick)

    async def _drain_tick(self) -> None:
        self._drain_timer = None
        try:
            tokens = await self._drain()
        except NoMatches:  # the app is closing and its widgets are gone
            return
        if self._outstanding > 0 or not self.inbox.empty():
            self._schedule_drain(DRAIN_SLOW_S if tokens >= FAST_BATCH_TOKENS else DRAIN_FAST_S)

    async def _drain(self) -> int:
        """Hand everything queued to the widgets, in batches; returns the tokens handled."""
        items: list[tuple[int, Item]] = []
        get = self.inbox.get_nowait
        try:
            while True:
                items.append(get())
        except queue.Empty:
            pass
        tokens = 0
        for job_id, item in batch(items):
            if isinstance(item, (ThinkingChunk, AnswerChunk)):
                tokens += item.count
            await self._handle(job_id, item)
        for turn, _ in self._live.values():
            turn.tick()
        if self._loading_since is not None:
            self.status.show_loading(self.settings.model or "", self._clock() - self._loading_since)
        self._outstanding = max(0, self._outstanding)
        return tokens

    async def drain_now(self) -> None:
        """Process what is queued (tests and benchmarks call this between pauses)."""
        await self._drain()

    async def _handle(self, job_id: int, item: Item) -> None:
        if isinstance(item, JobEnded):
            self._outstanding -= 1
            await self._job_ended(job_id)
            return
        if isinstance(item, (Loading, Loaded, LoadFailed)):
            if job_id == self._load_job:
                self._load_event(item)
            return
        if isinstance(item, ContextUsed):
            self.context_used = item.tokens
            self._refresh_status()
            return
        if isinstance(item, EngineLost):
            self.notify(item.message, title="Model", severity="error", timeout=10)
            self._load_model()  # in a new process
            return
        live = self._live.get(job_id)
        if live is None:
            return  # a reply whose turn was cleared away (new chat): History has it
        turn, ex = live
        await turn.apply(item)
        if isinstance(item, Done):
            ex.answer, ex.reasoning = item.content, item.reasoning
            ex.stats, ex.finish_reason = item.stats.to_dict(), item.finish_reason
            if item.stats.thinking_tokens + item.stats.answer_tokens:
                self.last_stats = item.stats
            self._refresh_status()
        elif isinstance(item, Failed):
            if turn.reasoning.text or turn.answer.has_text:
                # it broke mid-reply (the model process died): keep what arrived
                self._try(lambda: self.conversation.keep_partial(
                    ex, turn.answer.text, turn.reasoning.text))  # fmt: skip
            else:  # it never started: the prompt stays, the empty reply goes
                ex.failed = True
                self._try(lambda: self.conversation.drop_reply(ex))
        elif isinstance(item, Notice):
            self.notify(item.message, severity="warning", timeout=6)

    async def _job_ended(self, job_id: int) -> None:
        if self.current is not None and self.current.id == job_id:
            self.current = None
            self._live.pop(job_id, None)
            self.refresh_bindings()
            if self.sidebar.display:
                await self.refresh_sidebar()
            action, self._after_reply = self._after_reply, None
            if action is not None:
                result = action()
                if asyncio.iscoroutine(result):
                    await result
        else:
            self._live.pop(job_id, None)

    # -- the model --------------------------------------------------------------------

    def _load_model(self) -> None:
        self._load_job = self.engine.load(self.settings)
        self._loading_since = self._clock()
        self.info = None
        self._job_started()
        self.status.show_loading(self.settings.model or "", 0)

    def _load_event(self, item: Loading | Loaded | LoadFailed) -> None:
        error = self.query_one("#load-error", Static)
        if isinstance(item, Loading):
            return
        self._loading_since = None
        if isinstance(item, Loaded):
            self.info = item.info
            self.load_error = None
            error.display = False
            self._refresh_status()
            if self.conversation.exchanges and self.context_used is None:
                self._measure()
        else:
            self.load_error = item.message
            error.update(Content.assemble(("Cannot load the model: ", "bold"), item.message))
            error.display = True
            self.status.show_error("no model loaded (ctrl+p → Settings: Model)")

    def _refresh_status(self) -> None:
        if self.info is not None:
            self.status.show_ready(self.info, self.context_used, self.last_stats)

    def _measure(self) -> None:
        if not self.conversation.exchanges:
            return
        messages = self.conversation.messages()
        answered = self.conversation.exchanges[-1]
        if answered.answered:
            from r1chat.core.messages import Message as ChatMessage

            messages = (*messages, ChatMessage("assistant", answered.answer))
        self.engine.measure(messages, self.conversation.request(self.settings))
        self._job_started()

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
        if self.editing:
            await self._drop_last_exchange()
        self.editing = False
        self.prompt.border_subtitle = ""
        exchange: Exchange | None = None

        def add() -> None:
            nonlocal exchange
            exchange = self.conversation.add_prompt(text, self.model_name)

        if not self._try(add) or exchange is None:
            return
        self.prompt.clear()
        await self.transcript.query(".welcome").remove()
        await self.transcript.mount(UserMessage(text))
        await self._start_reply(exchange)

    async def _start_reply(self, ex: Exchange) -> None:
        turn = AssistantTurn(collapsed=self.display_mode == "collapsed", clock=self._clock)
        await self.transcript.mount(turn)
        message_id: int | None = None

        def start() -> None:
            nonlocal message_id
            message_id = self.conversation.start_reply(ex, self.model_name, self.settings)

        if not self._try(start):
            message_id = None
        request = self.conversation.request(self.settings)
        job = self.engine.reply(request, self.settings.guards, message_id)
        self.current = job
        self._live[job.id] = (turn, ex)
        self._job_started()
        waiting = "Waiting for the model to load…" if self.info is None else "Reading the prompt…"
        turn.start(think=self.settings.think, waiting=waiting)
        self.transcript.follow()
        self.refresh_bindings()

    async def _drop_last_exchange(self) -> None:
        """Remove the last prompt and its reply (from the screen and from History)."""
        self._try(self.conversation.drop_last)
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
        await self.transcript.remove_children()
        await self._show_welcome()
        self.prompt.clear()
        self.prompt.focus()
        self._refresh_status()
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
                self.copy_to_clipboard(ex.answer)
                self.notify("Copied the last answer.", timeout=2)
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
            sidebar.listing.focus()
        else:
            self.prompt.focus()

    async def refresh_sidebar(self) -> None:
        text = self.sidebar.search_text
        try:
            if text.strip():
                hits = self.history.search(text, mark=MARK)
                await self.sidebar.show_hits(hits, self.conversation.id)
            else:
                conversations = self.history.list_conversations()
                await self.sidebar.show_conversations(conversations, self.conversation.id)
        except R1ChatError as e:
            self.notify(str(e), title="History", severity="error")

    @on(Sidebar.SearchChanged)
    async def _search(self, event: Sidebar.SearchChanged) -> None:
        self._search_serial += 1
        serial = self._search_serial
        await asyncio.sleep(0.15)  # wait for the typing to pause
        if serial == self._search_serial:
            await self.refresh_sidebar()

    @on(Sidebar.Open)
    async def _open(self, event: Sidebar.Open) -> None:
        if isinstance(event, (Sidebar.Rename, Sidebar.Delete)):
            return
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
                turn = AssistantTurn(
                    reasoning_title=titles.stored(ex.reasoning, ex.stats, ex.finish_reason),
                    reasoning=ex.reasoning,
                    answer=ex.answer,
                    collapsed=collapsed,
                    empty_reasoning=not ex.reasoning,
                )
                widgets.append(turn)
                if ex.stats is None:
                    turn.answer.set_status("■ Interrupted (r1chat was closed mid-reply)", "stopped")
                else:
                    from r1chat.tui.widgets.turns import FINISH_NOTES

                    note, kind = FINISH_NOTES.get(ex.finish_reason or "", ("", "info"))
                    turn.answer.set_status(note, kind)
        await self.transcript.mount_all(widgets)
        self.transcript.scroll_end(animate=False)
        self.context_used = None
        self.last_stats = None
        self._refresh_status()
        if self.info is not None:
            self._measure()
        if self.sidebar.display:
            await self.refresh_sidebar()

    @on(Sidebar.Rename)
    def _rename(self, event: Sidebar.Rename) -> None:
        self.rename_conversation(event.conversation_id)

    def rename_conversation(self, conversation_id: int) -> None:
        try:
            current = self.history.conversation(conversation_id).title
        except R1ChatError as e:
            self.notify(str(e), severity="error")
            return

        async def done(title: str | None) -> None:
            if title is not None and title.strip():
                self._try(lambda: self.history.rename(conversation_id, title))
                await self.refresh_sidebar()

        self.push_screen(TextPromptScreen("Rename this chat:", current), done)

    @on(Sidebar.Delete)
    def _delete(self, event: Sidebar.Delete) -> None:
        self.delete_conversation(event.conversation_id)

    def delete_conversation(self, conversation_id: int) -> None:
        try:
            title = self.history.conversation(conversation_id).display_title
        except R1ChatError as e:
            self.notify(str(e), severity="error")
            return

        async def done(yes: bool | None) -> None:
            if not yes:
                return
            if conversation_id == self.conversation.id:
                await self.action_new_chat()
            self._try(lambda: self.history.delete(conversation_id))
            await self.refresh_sidebar()

        self.push_screen(ConfirmScreen(f"Delete the chat “{title}” and all its messages?"), done)

    # -- settings ---------------------------------------------------------------------

    def open_settings(self, focus: str | None = None) -> None:
        old = preferences.prefs_of(self.settings, self.display_mode)

        def done(new: preferences.ChatPrefs | None) -> None:
            if new is not None:
                self.apply_prefs(old, new)

        self.push_screen(SettingsScreen(old, focus), done)

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

        if any(isinstance(s, ModelsScreen) for s in self.screen_stack):
            return
        screen = ModelsScreen(
            config=self.config, in_use=self.settings.model, n_ctx=self.settings.n_ctx
        )
        self.push_screen(screen, self.use_model)

    def use_model(self, name: str | None) -> None:
        """Load another model for the chat (a catalog or imported name, or a GGUF path),
        as the model manager's "use now" does; the default in the config stays."""
        from dataclasses import replace

        if not name or (name == self.settings.model and self.load_error is None):
            return
        self.settings = replace(self.settings, model=name, endpoint=None)
        self.context_used = None
        self._load_model()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Settings", "Sampling, context, system prompt, reasoning",
                            self.open_settings)  # fmt: skip
        for name, label in FIELDS.items():
            yield SystemCommand(
                f"Settings: {label}", f"Change the {label.lower()}",
                lambda name=name: self.open_settings(name), discover=False,
            )  # fmt: skip
        yield SystemCommand("New chat", "Start a new conversation (ctrl+n)", self.action_new_chat)
        yield SystemCommand("Regenerate", "Answer the last prompt again (ctrl+r)",
                            self.action_regenerate)  # fmt: skip
        yield SystemCommand("Toggle reasoning", "Show or collapse every reasoning pane (ctrl+t)",
                            self.action_toggle_reasoning)  # fmt: skip
        yield SystemCommand("Chats", "Show or hide the conversations sidebar (ctrl+s)",
                            self.action_toggle_sidebar)  # fmt: skip
        yield SystemCommand("Copy last answer", "Copy the last answer, without reasoning (ctrl+g)",
                            self.action_copy_answer)  # fmt: skip
        yield SystemCommand("Models: manage…", "Pull, delete, set the default, switch the "
                            "chat's model (ctrl+o)", self.action_models)  # fmt: skip
        if self.conversation.id is not None:
            cid = self.conversation.id
            yield SystemCommand("Rename this chat", "Give this conversation a title",
                                lambda: self.rename_conversation(cid))  # fmt: skip
            yield SystemCommand("Delete this chat", "Delete this conversation",
                                lambda: self.delete_conversation(cid))  # fmt: skip

    # -- quitting ---------------------------------------------------------------------

    async def action_quit(self) -> None:
        """Stop the reply (it is saved as stopped), close the model, exit."""
        if self.current is not None:
            self.current.control.cancel()
        await asyncio.to_thread(self.engine.stop, 3.0)
        self.exit()
