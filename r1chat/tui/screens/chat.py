"""The chat screen: transcript, prompt, sidebar, status bar, and the keys that drive them.

The chat's state lives in its `ChatSession` (r1chat.session.chat): the dialogue, the
reply streaming now, the model's load. Its runner (a child process by default, chosen by
`tui/command.py`) reports items on `Inbox` (r1chat.tui.inbox), drained in batches; the
session takes each one and the screen shows what it returns: one reasoning append, one
Markdown append, one title update per batch for the live `AssistantTurn`. The status bar
is redrawn when what it shows changed, once per batch at most.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from pathlib import Path
from typing import ClassVar

from textual import getters, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Footer, Static
from textual.worker import Worker

from r1chat.config.file import Config
from r1chat.config.settings import Settings
from r1chat.core.attachments import MENTION, attach, split
from r1chat.core.errors import R1ChatError, UsageError
from r1chat.core.events import Notice
from r1chat.core.messages import ToolCall
from r1chat.core.printable import printable
from r1chat.core.request import input_limit
from r1chat.history.store import History
from r1chat.host.outcomes import (
    Failed,
    HostLost,
    Item,
    JobEnded,
    LeftOut,
    Loaded,
    LoadFailed,
    SaveNotice,
)
from r1chat.mcp import permissions
from r1chat.mcp.client import McpHub, ToolResult
from r1chat.session import tool_rounds
from r1chat.session.chat import ChatSession, ReplyEnded
from r1chat.session.dialogue import Exchange
from r1chat.session.runner import RunnerFactory, log_to_file
from r1chat.session.tool_rounds import Called
from r1chat.tui import draft, preferences
from r1chat.tui.inbox import Inbox
from r1chat.tui.model_text import first_run_hint
from r1chat.tui.screens.reader import ReaderScreen
from r1chat.tui.screens.settings import SettingsScreen
from r1chat.tui.widgets.prompt_input import PromptInput
from r1chat.tui.widgets.reasoning_log import ReasoningLog
from r1chat.tui.widgets.reasoning_pane import ReasoningPane
from r1chat.tui.widgets.sidebar import Sidebar
from r1chat.tui.widgets.status_bar import StatusBar
from r1chat.tui.widgets.tool_card import ToolCard
from r1chat.tui.widgets.transcript import Banner, Transcript
from r1chat.tui.widgets.turns import AssistantTurn, UserMessage

ATTACH_PAUSE_S = 0.4
"""A pause in typing before the draft's `@path` files are read and counted."""

WELCOME = (
    "Ask anything. Enter sends · ctrl+j new line · esc stops · ctrl+r regenerates · "
    "ctrl+t shows/hides reasoning · ctrl+s chats · ctrl+p settings and commands"
)


_TURN_ACTIONS = {"turn_version", "next_turn", "edit_turn", "regenerate_turn", "leave_turns"}


class ChatScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stop", "Stop", show=True),
        Binding("escape", "back", "Back", show=False),
        Binding("ctrl+n", "new_chat", "New"),
        Binding("ctrl+r", "regenerate", "Regenerate"),
        # a chosen turn's keys: priority, so that keys typed in a burst after one that
        # moves focus act where it went (check_action lets them through otherwise)
        Binding("alt+up", "turns", "Turns", show=False, priority=True),
        Binding("left", "turn_version(-1)", "Previous", priority=True),
        Binding("right", "turn_version(1)", "Next", priority=True),
        Binding("up", "next_turn(-1)", "Up", show=False, priority=True),
        Binding("down", "next_turn(1)", "Down", show=False, priority=True),
        Binding("e,enter", "edit_turn", "Edit", priority=True),
        Binding("r", "regenerate_turn", "Regenerate", priority=True),
        Binding("escape", "leave_turns", "Input", show=False, priority=True),
        Binding("ctrl+t", "toggle_reasoning", "Reasoning"),
        Binding("ctrl+s,f2", "toggle_sidebar", "Chats"),
        Binding("ctrl+g", "copy_answer", "Copy answer", show=False),
        Binding("ctrl+l,f3", "read_reasoning", "Read reasoning", show=False),
        Binding("ctrl+o", "models", "Models"),
    ]

    transcript = getters.query_one("#transcript", Transcript)
    prompt = getters.query_one("#prompt", PromptInput)
    status = getters.query_one("#status", StatusBar)
    sidebar = getters.query_one("#sidebar", Sidebar)
    load_error_line = getters.query_one("#load-error", Static)

    def __init__(
        self,
        settings: Settings,
        *,
        config: Config,
        history: History,
        conversation_id: int | None,
        runner: RunnerFactory,
        clock: Callable[[], float],
        mcp: McpHub | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.history = history
        self.mcp = mcp
        """MCP servers to connect when the chat opens; their tools go to the session."""
        self._calling: Worker[None] | None = None  # the tool calls of a reply, running
        self._card: ToolCard | None = None  # the call asked or running now
        self._call: Future[ToolResult] | None = None
        self._stop_asked = False  # esc while a reply's calls are handled, whenever it came
        self.display_mode = preferences.display_of(config)
        self._initial_conversation = conversation_id
        self._clock = clock
        self.inbox = Inbox(self, self._handle, self._after_drain)
        self.session = ChatSession(
            runner(self.inbox.queue, history, self.inbox.wake),
            history,
            settings,
            clock=clock,
            job_started=self.inbox.job_started,
        )
        self._turns: dict[int, AssistantTurn] = {}  # job id -> the turn its reply fills
        self._attaching: Timer | None = None  # the pause before the draft's files are counted
        self._mentioned: tuple[str, ...] = ()  # the `@path`s they were counted for
        self.editing: int | None = None
        """The exchange whose prompt is in the input to be sent as a new version."""
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

    async def on_mount(self) -> None:
        self.sidebar.display = False
        if self.app.is_headless:  # tests and screenshots: a steady cursor
            self.prompt.cursor_blink = False
        self.prompt.focus()
        self._load_model()
        if self.mcp is not None:
            self.run_worker(self._connect_tools, thread=True, group="mcp")
        if self._initial_conversation is not None:
            await self.open_conversation(self._initial_conversation)
        else:
            await self._show_welcome()
        if kept := draft.kept():
            self.prompt.insert(kept)
            self.notify("Your unsent draft from last time is back in the input.", timeout=5)

    async def _show_welcome(self) -> None:
        await self.transcript.mount(Banner(WELCOME, classes="welcome"))

    def on_unmount(self) -> None:
        if self.mcp is not None:
            self.mcp.close()
        self.session.stop()
        self.session.runner.stop(timeout=3.0)

    def keep_draft(self) -> str | None:
        """Keep what is typed and not sent for the next start (quitting); why not, if it
        could not be kept."""
        return draft.keep(self.prompt.text)

    # -- the draft's attached files in the context meter ------------------------------

    @on(PromptInput.Changed)
    def _draft_changed(self) -> None:
        """When the `@path` files the draft names change, count them (after a pause in
        typing) into the context meter."""
        if self._attaching is not None:
            self._attaching.stop()
        self._attaching = self.set_timer(ATTACH_PAUSE_S, self._measure_draft)

    def _measure_draft(self) -> None:
        text = self.prompt.text
        mentioned = tuple(MENTION.findall(text))
        if mentioned == self._mentioned:
            return
        self._mentioned = mentioned
        try:
            sent = attach(text, input_limit(self.session.settings.n_ctx), Path.cwd())
        except UsageError:  # (said when it is sent)
            sent = None
        self.session.measure_draft(sent.text if sent is not None and sent.files else None)
        self._show_status()

    # -- the status bar follows the session -------------------------------------------

    def _show_status(self) -> None:
        if self.is_mounted:
            self.status.show_session(self.session, self._clock())

    # -- the inbox --------------------------------------------------------------------

    async def on_inbox_wake(self, message: Inbox.Wake) -> None:
        await self.inbox.drain_soon()

    def _after_drain(self) -> None:
        for turn in self._turns.values():
            turn.tick()
        self._show_status()

    async def drain_now(self) -> None:
        """Process what is queued (tests and benchmarks call this between pauses)."""
        await self.inbox.drain()

    async def _handle(self, job_id: int, item: Item) -> None:
        if isinstance(item, JobEnded):
            self.inbox.job_ended()
        match self.session.accept(job_id, item):
            case None:
                pass
            case ReplyEnded(then=then, calls=calls, dropped=dropped):
                await self._reply_ended(job_id, then)
                if dropped:
                    self.notify(
                        f"The model still called tools after {tool_rounds.MAX_ROUNDS} rounds: "
                        "those calls were not run.",
                        title="Tools",
                        severity="warning",
                        timeout=8,
                    )
                if calls:
                    self._calling = self.run_worker(self._run_calls(calls), group="tools")
            case Loaded():
                self.load_error_line.display = False
            case LoadFailed(message=message):
                self._show_load_error(message)
            case LeftOut(turns=turns, keep_first=keep_first):
                self.transcript.mark_left_out(turns, keep_first)
                first = "after the first " if keep_first else ""
                s = "s" if turns != 1 else ""
                self.notify(
                    f"The conversation is over the context: the {turns} oldest turn{s} "
                    f"{first}were left out of this prompt (they stay in the history).",
                    timeout=6,
                )
            case HostLost(message=message):
                self.notify(message, title="Model", severity="error", timeout=10)
            case SaveNotice(message=message, problem=True):
                self.notify(message, severity="warning", timeout=10)
            case SaveNotice(message=message):
                self.notify(message, timeout=5)
            case Notice(message=message):
                self.notify(message, severity="warning", timeout=6)
                await self._to_turn(job_id, item)
            case Failed(message=message):
                await self._failed(job_id, message)
            case shown:  # (an answer's tool calls taken out of it)
                await self._to_turn(job_id, shown)

    async def _to_turn(self, job_id: int, item: Item) -> None:
        if (turn := self._turns.get(job_id)) is not None:
            await turn.apply(item)

    async def _failed(self, job_id: int, message: str) -> None:
        turn = self._turns.get(job_id)
        if turn is None:
            return
        await turn.apply(Failed(message))
        answer, reasoning = turn.answer.text, turn.reasoning.text
        try:
            withdrawn = self.session.reply_failed(job_id, answer, reasoning)
        except R1ChatError as e:
            self._history_error(e)
            return
        if withdrawn is not None:  # it never started: the prompt goes back to the input
            await self.transcript.remove_last_exchange()
            if not self.prompt.text:
                self.prompt.insert(withdrawn.prompt)
            self.notify(
                f"{message} (not sent: your prompt is back in the input)",
                severity="error",
                timeout=10,
            )

    async def _reply_ended(self, job_id: int, then: Callable[[], object] | None) -> None:
        self._turns.pop(job_id, None)
        self.refresh_bindings()
        if self.sidebar.display:
            await self.refresh_sidebar()
        if then is not None and (result := then()) is not None:
            await result  # type: ignore[misc]

    # -- the model --------------------------------------------------------------------

    def _load_model(self) -> None:
        self.session.load()
        self._show_status()

    def _show_load_error(self, message: str) -> None:
        s = self.session.settings
        first_run = None if s.endpoint or s.model else first_run_hint()  # asked: news
        if first_run is not None:
            self.load_error_line.update(first_run)
        else:
            text = printable(message)
            self.load_error_line.update(Content.assemble(("Cannot load the model: ", "bold"), text))
        self.load_error_line.display = True

    # -- sending ----------------------------------------------------------------------

    def _history_error(self, e: R1ChatError) -> None:
        self.notify(str(e), title="History", severity="error", timeout=8)

    @on(PromptInput.Submitted)
    async def _submitted(self, event: PromptInput.Submitted) -> None:
        await self.send(event.text)

    async def send(self, text: str) -> None:
        """Send a prompt (what Enter does)."""
        if not text.strip():
            return
        if (refusal := self.session.refusal()) is not None:
            error = self.session.load_error is not None
            self.notify(
                refusal, severity="error" if error else "information", timeout=10 if error else 3
            )
            return
        try:
            sent = attach(text, input_limit(self.session.settings.n_ctx), Path.cwd())
        except UsageError as e:  # an @path that is no readable text file
            self.notify(str(e), title="Attach", severity="error", timeout=8)
            return
        try:
            exchange = self.session.add_prompt(sent.text, at=self.editing)
        except R1ChatError as e:
            self._history_error(e)
            return
        if self.editing is not None:  # the edited exchange and those after it: another branch
            await self.transcript.remove_children(self.transcript.from_exchange(self.editing))
        self.editing = None
        self.prompt.border_subtitle = ""
        self.prompt.clear()
        self._mentioned = ()
        self.session.measure_draft(None)  # (its files are the conversation's now)
        draft.keep("")  # (a draft put back is sent: it is not put back again)
        await self.transcript.query(".welcome").remove()
        await self.transcript.mount(UserMessage(sent.text, exchange.prompt_version))
        await self._start_reply(exchange)

    async def _start_reply(self, ex: Exchange, called: list[Called] | None = None) -> None:
        """Start `ex`'s reply, or its next round after the tool calls in `called`."""
        self.transcript.mark_left_out(0)  # the engine says again what this prompt leaves out
        turn = AssistantTurn(collapsed=self.display_mode == "collapsed", clock=self._clock)
        await self.transcript.mount(turn)
        if called is None:
            job, unsaved = self.session.start_reply(ex)
        else:
            job, unsaved = self.session.next_round(ex, called)
        if unsaved is not None:
            self.notify(unsaved, title="History", severity="error", timeout=8)
        self._turns[job.id] = turn
        turn.answer.set_version(ex.reply_version)
        waiting = "Reading the prompt…" if self.session.info else "Waiting for the model to load…"
        turn.start(think=self.session.settings.think, waiting=waiting)
        self.transcript.follow()
        self.refresh_bindings()

    # -- actions ----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":  # shown dimmed in the footer while nothing streams
            return True if self.session.current is not None or self.session.calling else None
        if action == "back":
            return not self.session.calling
        if action == "leave_turns" and (self.session.current or self.session.calling):
            return False  # esc stops what runs first
        if action in _TURN_ACTIONS:
            turn = self.focused
            if action == "edit_turn":
                return isinstance(turn, UserMessage)
            if action == "regenerate_turn":
                return isinstance(turn, AssistantTurn)
            return isinstance(turn, UserMessage | AssistantTurn)
        return True

    def action_stop(self) -> None:
        """Esc while a reply streams: stop it (the partial reply is kept); while its tools
        are asked or run: stop them, and the reply."""
        if self.session.calling:
            self._stop_asked = True  # (also between two cards, or as the next round starts)
            if self._call is not None:
                self._call.cancel()
            if self._card is not None:
                self._card.action_decide(None)
            return
        self.session.stop()

    # -- tools (MCP) ------------------------------------------------------------------

    def _connect_tools(self) -> None:
        """(a thread) Start the MCP servers; the tools are offered once they are up."""
        assert self.mcp is not None
        self.mcp.start()
        self.app.call_from_thread(self._tools_ready)

    def _tools_ready(self) -> None:
        assert self.mcp is not None
        for problem in self.mcp.problems:
            self.notify(problem, title="Tools", severity="error", timeout=10)
        if self.mcp.tools:
            self.session.mcp = self.mcp
            servers = len({t.server for t in self.mcp.tools})
            self.notify(
                f"{len(self.mcp.tools)} tools from {servers} MCP server"
                f"{'s' if servers != 1 else ''} (ctrl+p lists them).",
                title="Tools",
                timeout=4,
            )
        self._show_status()

    def toggle_server(self, name: str) -> None:
        """Turn an MCP server's tools off or on for this chat (the palette)."""
        assert self.mcp is not None
        off = self.mcp.off
        off.symmetric_difference_update({name})
        state = "off" if name in off else "on"
        self.notify(f"MCP server {name}: its tools are {state} for this chat.", timeout=3)

    async def _run_calls(self, calls: tuple[ToolCall, ...]) -> None:
        """Ask about and run the calls the reply made, then go on with its next round
        (or end it, if the user stopped them)."""
        assert self.mcp is not None
        ex = self.session.dialogue.exchanges[-1]
        called = [Called(call) for call in calls]
        self.session.calling, self._stop_asked = True, False
        self.refresh_bindings()
        stopped = False
        allowed = permissions.always()
        try:
            for c in called:
                tool = self.mcp.find(c.call.name)
                card = ToolCard(c, tool.server if tool else "")
                self._card = card
                await self.transcript.mount(card)
                self.transcript.follow()
                if stopped or self._stop_asked:
                    c.status, stopped = "stopped", True
                    card.settled()
                    continue
                key = f"{tool.server}/{tool.remote}" if tool else ""
                choice = "always" if key in allowed else await self._ask(card)
                if choice is None:
                    c.status, stopped = "stopped", True
                elif choice == "deny":
                    c.status = "denied"
                else:
                    if choice == "always" and key not in allowed:
                        allowed.add(key)
                        if (why := permissions.allow_always(key)) is not None:
                            self.notify(why, title="Tools", severity="warning")
                    stopped = not await self._run_one(c, card)
                card.settled()
        finally:
            self._card, self._call = None, None
        self.set_focus(self.prompt)
        try:
            if stopped or self._stop_asked:
                try:
                    self.session.end_rounds(ex, called)
                except R1ChatError as e:
                    self._history_error(e)
                return
            # `calling` holds until the next round's reply exists: an esc meanwhile stops it
            await self._start_reply(ex, called)
        finally:
            self.session.calling = False
            self.refresh_bindings()
        if self._stop_asked:
            self.session.stop()

    async def _ask(self, card: ToolCard) -> str | None:
        decision = card.ask()
        self.set_focus(card)
        return await decision

    async def _run_one(self, c: Called, card: ToolCard) -> bool:
        """Run one call; False if the user stopped it."""
        assert self.mcp is not None
        card.running()
        self._call = self.mcp.call(c.call.name, c.call.arguments)
        try:
            result = await asyncio.wrap_future(self._call)
        except (asyncio.CancelledError, CancelledError):
            c.status = "stopped"
            return False
        finally:
            self._call = None
        c.status, c.result = ("error" if result.error else "ok"), result.text
        return True

    async def action_back(self) -> None:
        """Esc otherwise: close the sidebar, leave the turns for the input, or cancel
        editing a prompt."""
        if self.sidebar.display and self.sidebar.has_focus_within:
            await self.action_toggle_sidebar()
        elif self._focused_turn() is not None:  # (something inside a turn: a pane)
            self.set_focus(self.prompt)
        elif self.editing is not None:
            self.editing = None
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
        """Another answer to the last prompt (ctrl+r); the one it replaces is kept."""
        if not self.session.dialogue.exchanges:
            self.notify("Nothing to regenerate yet.", timeout=3)
            return
        await self._regenerate(len(self.session.dialogue.exchanges) - 1)

    async def _regenerate(self, at: int) -> None:
        if self.session.current is not None:
            self.session.after_current(lambda: self._regenerate(at))
            return
        try:
            ex = self.session.dialogue.regenerate(at)
        except R1ChatError as e:
            self._history_error(e)
            return
        shown = self.transcript.from_exchange(at)
        await self.transcript.remove_children(shown[1:])  # the prompt stays
        await self._start_reply(ex)

    # -- turns: a prompt or reply chosen with alt+up ----------------------------------

    def _focused_turn(self) -> UserMessage | AssistantTurn | None:
        node = self.focused
        while node is not None and not isinstance(node, UserMessage | AssistantTurn):
            node = node.parent if isinstance(node.parent, Widget) else None
        return node

    def action_turns(self) -> None:
        """Alt+up: choose the last turn; up and down move, left and right show its other
        versions, e edits a prompt, r regenerates a reply, esc goes back to the input."""
        if turns := self.transcript.turns():
            self.set_focus(turns[-1])  # (now: keys typed right after it move from there)

    def action_leave_turns(self) -> None:
        """Esc on a chosen turn: back to the input."""
        self.set_focus(self.prompt)

    def action_next_turn(self, step: int) -> None:
        turn = self._focused_turn()
        turns = self.transcript.turns()
        if turn is None or turn not in turns:
            return
        at = turns.index(turn) + step
        if at >= len(turns):
            self.set_focus(self.prompt)
        elif at >= 0:
            self.set_focus(turns[at])

    async def action_turn_version(self, step: int) -> None:
        """Show the previous or next version of the chosen prompt or reply, and the
        branch that follows it."""
        turn = self._focused_turn()
        if turn is None:
            return
        if self.session.current is not None:
            self.notify("Still answering: press esc to stop it first.", timeout=3)
            return
        at = self.transcript.exchange_of(turn)
        part = "prompt" if isinstance(turn, UserMessage) else "reply"
        try:
            switched = self.session.switch(at, part, step)
        except R1ChatError as e:
            self._history_error(e)
            return
        if not switched:
            self.app.bell()
            return
        self.editing = None
        await self.transcript.show(
            self.session.dialogue, collapsed=self.display_mode == "collapsed", start=at
        )
        self.transcript.mark_left_out(
            self.session.left_out, self.session.settings.overflow.keep_first
        )
        turns = [t for t in self.transcript.from_exchange(at) if isinstance(t, type(turn))]
        if turns:
            self.set_focus(turns[0])
        self._show_status()

    def action_edit_turn(self) -> None:
        """Put the chosen prompt in the input: sent, it is a new version beside it."""
        turn = self._focused_turn()
        if isinstance(turn, UserMessage):
            self._edit(self.transcript.exchange_of(turn))

    async def action_regenerate_turn(self) -> None:
        turn = self._focused_turn()
        if isinstance(turn, AssistantTurn):
            await self._regenerate(self.transcript.exchange_of(turn))
            self.prompt.focus()

    async def action_new_chat(self) -> None:
        self.session.new_chat()
        self._turns.clear()
        self.editing = None
        self.refresh_bindings()
        self.transcript.mark_left_out(0)
        self._show_status()
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
        for ex in reversed(self.session.dialogue.exchanges):
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
        self._edit(len(self.session.dialogue.exchanges) - 1)

    def _edit(self, at: int) -> None:
        """Put exchange `at`'s prompt in the input, to send as a new version of it."""
        exchanges = self.session.dialogue.exchanges
        if self.session.current is not None or not 0 <= at < len(exchanges):
            return
        self.editing = at
        self.prompt.load_text(split(exchanges[at].prompt).prompt)  # (its @files read anew)
        self.prompt.move_cursor(self.prompt.document.end)
        which = "your last prompt" if at == len(exchanges) - 1 else f"prompt {at + 1}"
        self.prompt.border_subtitle = (
            f"editing {which} · Enter sends it as a new version (the old one is kept) · esc cancels"
        )
        self.prompt.focus()

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
        await self.sidebar.refresh_list(self.session.dialogue.id)

    @on(Sidebar.Open)
    async def _open(self, event: Sidebar.Open) -> None:
        await self.open_conversation(event.conversation_id, event.message_id)
        self.prompt.focus()

    async def open_conversation(self, conversation_id: int, message_id: int | None = None) -> None:
        """Open a saved conversation, on the branch holding `message_id` if given."""
        try:
            dialogue = self.session.open(conversation_id, message_id)
        except R1ChatError as e:
            self.notify(str(e), title="History", severity="error")
            return
        self._turns.clear()
        self.editing = None
        self.refresh_bindings()
        await self.transcript.show(dialogue, collapsed=self.display_mode == "collapsed")
        self.transcript.mark_left_out(
            self.session.left_out, self.session.settings.overflow.keep_first
        )
        self._show_status()
        if self.sidebar.display:
            await self.refresh_sidebar()

    @on(Sidebar.Delete)
    async def _delete(self, event: Sidebar.Delete) -> None:
        """Delete a conversation the user confirmed (a new chat first if it is open)."""
        if event.conversation_id == self.session.dialogue.id:
            await self.action_new_chat()
        try:
            self.history.delete(event.conversation_id)
        except R1ChatError as e:
            self._history_error(e)
        await self.refresh_sidebar()

    # -- settings ---------------------------------------------------------------------

    def open_settings(self, focus: str | None = None) -> None:
        old = preferences.prefs_of(self.session.settings, self.display_mode)

        def done(new: preferences.ChatPrefs | None) -> None:
            if new is not None:
                self.apply_prefs(old, new)

        self.app.push_screen(SettingsScreen(old, focus), done)

    def apply_prefs(self, old: preferences.ChatPrefs, new: preferences.ChatPrefs) -> None:
        if new.display != self.display_mode:
            self.action_toggle_reasoning()
        try:
            changed = preferences.save(self.config, old, new)
        except (OSError, TypeError) as e:
            self.notify(f"could not save the config: {e}", severity="error")
            changed = []
        if changed:
            self.notify("Settings saved.", timeout=2)
        self.session.use(preferences.apply(self.session.settings, new))
        self._show_status()

    # -- models -----------------------------------------------------------------------

    def action_models(self) -> None:
        """The model manager (ctrl+o): pull, delete, set the default, use a model now."""
        from r1chat.tui.screens.models import ModelsScreen

        if any(isinstance(s, ModelsScreen) for s in self.app.screen_stack):
            return
        settings = self.session.settings
        screen = ModelsScreen(config=self.config, in_use=settings.model, n_ctx=settings.n_ctx)
        self.app.push_screen(screen, self.use_model)

    def use_model(self, name: str | None) -> None:
        """Load another model for the chat (a catalog or imported name, or a GGUF path),
        as the model manager's "use now" does; the default in the config stays."""
        if name and self.session.use_model(name):
            self._show_status()
