"""The chat's session, without widgets: the open dialogue, the runner, the reply streaming
now and the model's load.

`ChatScreen` (r1chat.tui.screens.chat) asks it to send, stop, regenerate, start a new chat
or open one, and hands it every `(job_id, item)` its runner reports: `accept` updates
the state (model info, context used, the exchange a reply fills) and returns what the
screen should show, or None for what is stale or state only. Its runner is the model
host (r1chat.host); tests drive it with the host on threads (`runner.in_thread`) and a
scripted engine, no Textual and no llama.cpp.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from r1chat.config.settings import Settings
from r1chat.core.errors import R1ChatError
from r1chat.core.events import Done, EngineInfo, Stats
from r1chat.core.messages import Message, ToolCall
from r1chat.core.request import Request
from r1chat.history.store import History
from r1chat.host.commands import Load, Measure, Model, Reply
from r1chat.host.model_host import ModelHost
from r1chat.host.outcomes import (
    Accepted,
    AnswerChunk,
    ContextUsed,
    HostLost,
    Item,
    JobEnded,
    LeftOut,
    Loaded,
    LoadFailed,
    Loading,
    Prefilled,
    SaveNotice,
    Started,
)
from r1chat.mcp.client import McpHub
from r1chat.session import tool_rounds
from r1chat.session.dialogue import Dialogue, Exchange
from r1chat.session.runner import ReplyJob
from r1chat.session.tool_rounds import AnswerCalls, Called, Round


@dataclass(frozen=True, slots=True)
class ReplyEnded:
    """The reply streaming now is over; `then` is what was asked to run after it;
    `calls`, the tools its answer called (the screen asks, runs them, and goes on with
    `next_round`)."""

    then: Callable[[], object] | None
    calls: tuple[ToolCall, ...] = ()
    dropped: int = 0  # calls made after the last round of calls (`MAX_ROUNDS`)


class ChatSession:
    """One chat's state and the jobs it gives its runner."""

    def __init__(
        self,
        runner: ModelHost,
        history: History,
        settings: Settings,
        *,
        clock: Callable[[], float],
        job_started: Callable[[], None] = lambda: None,
    ) -> None:
        """`job_started` is told of each job given to the runner (the screen drains its
        inbox while any is out)."""
        self.runner, self.history, self.settings = runner, history, settings
        self.model = Model(settings)
        """The model loaded last: replies and measures go to it."""
        self.dialogue = Dialogue(history)
        self._clock, self._job_started = clock, job_started
        self.current: ReplyJob | None = None
        """The reply streaming now."""
        self.live: dict[int, Exchange] = {}  # job id -> the exchange its reply fills
        self.info: EngineInfo | None = None
        """The loaded model (None while loading or after a failed load)."""
        self.load_error: str | None = None
        self.loading_since: float | None = None
        self.context_used: int | None = None
        """Tokens the conversation re-sends with the next prompt."""
        self.draft_used: int | None = None
        """Tokens the next prompt would fill with the draft's `@path` files (None: the
        draft attaches none)."""
        self._draft_job: int | None = None
        self.left_out = 0  # earlier exchanges the last prompt left out (over the context)
        self.last_stats: Stats | None = None
        self.prefilled = 0  # tokens the last idle-time prefill read ahead of the next prompt
        self._load_job = 0
        self._then: Callable[[], object] | None = None
        self.mcp: McpHub | None = None
        """The MCP servers whose tools replies may call (None: no tools)."""
        self.calling = False
        """The calls of the last reply are being asked about or run."""
        self._readers: dict[int, _Calls] = {}  # job id -> the calls its answer makes

    @property
    def model_name(self) -> str:
        return self.info.model if self.info is not None else (self.settings.model or "")

    # -- the model --------------------------------------------------------------------

    def load(self) -> None:
        """Load `settings`' model (again); a load asked before it is forgotten."""
        self.model = Model(self.settings)
        self._load_job = self.runner.next_id()
        self.runner.send(Load(self._load_job, self.model))
        self.loading_since = self._clock()
        self.info = None
        self._job_started()

    def use(self, settings: Settings) -> None:
        """Go on with `settings`, loading the model again when it or its context changed."""
        old, self.settings = self.settings, settings
        if (settings.model, settings.n_ctx) != (old.model, old.n_ctx):
            self.context_used = None
            self.load()

    def use_model(self, name: str) -> bool:
        """Load model `name` for this chat (the config's default stays); False when it is
        the one loaded already."""
        if not name or (name == self.settings.model and self.load_error is None):
            return False
        self.settings = replace(self.settings, model=name, endpoint=None)
        self.context_used = None
        self.load()
        return True

    def measure(self) -> None:
        """Ask what context the conversation fills (`ContextUsed` updates `context_used`)."""
        if not self.dialogue.exchanges:
            return
        messages = self.dialogue.messages()
        last = self.dialogue.exchanges[-1]
        if last.answered:
            messages = (*messages, Message("assistant", last.answer))
        self._measure(messages, self.dialogue.request(self.settings))

    def measure_draft(self, text: str | None) -> None:
        """Ask what context the conversation fills with `text` (a draft with its files
        attached) as the next prompt (`draft_used`); None forgets the last answer."""
        self.draft_used, self._draft_job = None, None
        if text is None or self.info is None:
            return
        messages = (*self.dialogue.context(), Message("user", text))
        self._draft_job = self._measure(messages, self.settings.request(messages))

    def _measure(self, messages: tuple[Message, ...], request: Request) -> int:
        job = self.runner.next_id()
        self.runner.send(Measure(job, self.model, messages, request, self.settings.overflow))
        self._job_started()
        return job

    # -- replies ----------------------------------------------------------------------

    def refusal(self) -> str | None:
        """Why a prompt cannot be sent now, if it cannot."""
        if self.current is not None or self.calling:
            return "Still answering: press esc to stop it first."
        if self.load_error is not None:
            return f"No model to answer: {self.load_error}"
        return None

    def add_prompt(self, text: str, at: int | None = None) -> Exchange:
        """Save a prompt (and its empty reply row), as a new version of exchange `at` if
        given (an edit): `R1ChatError` if History cannot."""
        return self.dialogue.add_prompt(text, self.model_name, self.settings, at=at)

    def start_reply(self, ex: Exchange) -> tuple[ReplyJob, str | None]:
        """Ask the runner for `ex`'s reply; with why it will not be saved, if it cannot be."""
        self.left_out = 0  # the engine says again what this prompt leaves out
        unsaved = None
        try:
            message_id: int | None = self.dialogue.start_reply(ex, self.model_name, self.settings)
        except R1ChatError as e:
            message_id, unsaved = None, str(e)
        request = self.dialogue.request(self.settings)
        tools = tool_rounds.offered(self.mcp.offered, len(ex.rounds)) if self.mcp else None
        if tools is not None:
            request = replace(request, tools=tools)
        job_id = self.runner.next_id()
        if tools is not None:
            self._readers[job_id] = _Calls(tools)
        ended = self.runner.send(
            Reply(
                job_id,
                self.model,
                request,
                self.settings.guards,
                save_to=message_id,
                overflow=self.settings.overflow,
                measure=True,
            )
        )
        job = ReplyJob(job_id, ended, self.runner)
        self.current = job
        self.live[job.id] = ex
        self._job_started()
        return job, unsaved

    def next_round(self, ex: Exchange, called: list[Called]) -> tuple[ReplyJob, str | None]:
        """The calls `ex`'s reply made, answered: keep the round, and go on with the next
        (`start_reply`)."""
        self._keep_round(ex, called)
        unsaved = None
        try:
            self.dialogue.save_rounds(ex)
        except R1ChatError as e:
            unsaved = str(e)
        job, later = self.start_reply(ex)
        return job, unsaved or later

    def end_rounds(self, ex: Exchange, called: list[Called]) -> None:
        """The user stopped the calls: keep the round, the reply ends there (stopped)."""
        self._keep_round(ex, called)
        ex.answer, ex.reasoning, ex.finish_reason = "", "", "cancelled"
        self.dialogue.save_rounds(ex, finish_reason="cancelled", cleared=True)

    @staticmethod
    def _keep_round(ex: Exchange, called: list[Called]) -> None:
        ex.rounds.append(Round(ex.reasoning, ex.answer, called, ex.stats))

    def stop(self) -> None:
        """Stop the reply streaming now (what arrived is kept)."""
        if self.current is not None:
            self.current.cancel()

    def after_current(self, then: Callable[[], object]) -> None:
        """Stop the reply streaming now and run `then` once it has ended."""
        self.stop()
        self._then = then

    def reply_failed(self, job_id: int, answer: str, reasoning: str) -> Exchange | None:
        """A reply broke off. What it showed is kept; one that showed nothing is withdrawn
        (prompt and all) and returned, for its prompt to go back to the input."""
        ex = self.live.get(job_id)
        if ex is None:
            return None
        if answer or reasoning:
            self.dialogue.keep_partial(ex, answer, reasoning)
            return None
        if self.dialogue.exchanges and self.dialogue.exchanges[-1] is ex:
            self.dialogue.withdraw_last()
        return ex

    # -- conversations ----------------------------------------------------------------

    def new_chat(self) -> None:
        """Leave the conversation (a reply streaming stops, and is saved as stopped)."""
        self.stop()
        self.current = None
        self.live.clear()
        self.dialogue = Dialogue(self.history)
        self.context_used = None
        self.left_out = 0

    def open(self, conversation_id: int, message_id: int | None = None) -> Dialogue:
        """Go on with a saved conversation, on the branch holding `message_id` if given
        (a search hit), else the one shown last (`R1ChatError` if it cannot be read)."""
        if message_id is not None and all(
            m.id != message_id for m in self.history.messages(conversation_id)
        ):
            self.history.show(conversation_id, message_id)
        dialogue = Dialogue.load(self.history, conversation_id)
        self.new_chat()
        self.dialogue = dialogue
        self._measured_anew()
        return dialogue

    def _measured_anew(self) -> None:
        """Another branch is shown: what its last reply left out, and what it fills."""
        exchanges = self.dialogue.exchanges
        last = exchanges[-1].stats or {} if exchanges else {}
        self.left_out = int(last.get("turns_left_out") or 0)
        self.last_stats = None
        self.context_used = None
        if self.info is not None:
            self.measure()

    def switch(self, at: int, part: str, step: int) -> bool:
        """Show another version of exchange `at`'s prompt or reply (`Dialogue.switch`):
        the context meter follows the branch now shown."""
        if not self.dialogue.switch(at, part, step):
            return False
        self._measured_anew()
        return True

    # -- what the runner reports ------------------------------------------------------

    def accept(self, job_id: int, item: Item) -> Item | ReplyEnded | None:
        """Take an item from the runner; what the screen should show of it (None: stale,
        or state only)."""
        match item:
            case Loading() | Accepted() | Started():
                return None
            case Loaded() | LoadFailed() if job_id != self._load_job:
                return None  # a load asked before the last one
            case Loaded(info=info):
                self.loading_since, self.info, self.load_error = None, info, None
                if self.dialogue.exchanges and self.context_used is None:
                    self.measure()
                return item
            case LoadFailed(message=message):
                self.loading_since, self.load_error = None, message
                return item
            case ContextUsed(tokens=tokens) if job_id == self._draft_job:
                self.draft_used = tokens
                return None
            case ContextUsed(tokens=tokens):
                self.context_used = tokens
                return None
            case Prefilled(tokens=tokens):
                self.prefilled = tokens  # the next prompt's cached_tokens will show it
                return None
            case LeftOut(turns=turns):
                self.left_out = turns
                return item
            case SaveNotice():
                return item
            case HostLost():
                self.load()  # in a new process
                return item
            case JobEnded():
                return self._ended(job_id)
        if job_id not in self.live:  # a reply whose chat was left: History has it
            return None
        if (calls := self._readers.get(job_id)) is not None:
            read = calls.read(item)
            if read is None:
                return None
            item = read
        if isinstance(item, Done):
            ex = self.live[job_id]
            ex.answer, ex.reasoning = item.content, item.reasoning
            ex.stats, ex.finish_reason = item.stats.to_dict(), item.finish_reason
            if item.stats.thinking_tokens + item.stats.answer_tokens:
                self.last_stats = item.stats
        return item

    def _ended(self, job_id: int) -> ReplyEnded | None:
        self.live.pop(job_id, None)
        calls = self._readers.pop(job_id, None)
        if self.current is None or self.current.id != job_id:
            return None
        self.current = None
        then, self._then = self._then, None
        if calls is None or then is not None:
            return ReplyEnded(then)
        return ReplyEnded(then, tuple(calls.calls), calls.dropped)


class _Calls(AnswerCalls):
    """`AnswerCalls` on the host's items: the screen shows the text, History keeps it,
    and the calls wait for `ReplyEnded`."""

    def read(self, item: Item) -> Item | None:
        if isinstance(item, AnswerChunk):
            text = self.feed(item.text)
            return AnswerChunk(text, item.count) if text else None
        if isinstance(item, Done):
            self.finish()
            if item.finish_reason == "cancelled":
                self.calls = []  # stopped: nothing it asked runs
            return replace(item, content=self.shown)
        return item
