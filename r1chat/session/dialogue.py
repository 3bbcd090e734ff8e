"""The open conversation (a `Dialogue`): its exchanges, the requests they make, and their
rows in History.

No Textual here; the app drives it and the widgets show it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from r1chat.config.settings import Settings
from r1chat.core.messages import Message
from r1chat.core.request import Request
from r1chat.history.records import Branch, make_title
from r1chat.history.store import History
from r1chat.session import tool_rounds
from r1chat.session.tool_rounds import Round


@dataclass
class Exchange:
    """One prompt and its reply (the reply is None until it has started)."""

    prompt: str
    prompt_id: int | None = None
    reply_id: int | None = None
    answer: str = ""
    reasoning: str = ""
    stats: dict[str, Any] | None = None
    finish_reason: str | None = None
    settings: dict[str, Any] | None = None  # what the reply was made with (model, sampling)
    prompt_version: tuple[int, int] = (1, 1)  # (which, of how many): edits sit side by side
    reply_version: tuple[int, int] = (1, 1)  # regenerated replies too
    rounds: list[Round] = field(default_factory=list)  # tool calls before the answer

    @property
    def answered(self) -> bool:
        return self.reply_id is not None


@dataclass
class Dialogue:
    """The exchanges of one chat, mirrored in History as they happen."""

    history: History
    id: int | None = None  # created with the first prompt
    exchanges: list[Exchange] = field(default_factory=list)
    source: str = "chat"  # where a new conversation is started: "chat" or "ask"

    @classmethod
    def load(cls, history: History, conversation_id: int) -> Dialogue:
        """The conversation's branch shown last."""
        conv = cls(history, conversation_id)
        conv.exchanges = pair(history.branch(conversation_id))
        return conv

    # -- requests ---------------------------------------------------------------------

    def context(self, upto: int | None = None) -> tuple[Message, ...]:
        """The answered exchanges before exchange `upto` (default: all of them) as
        messages. Reasoning is never re-sent."""
        out: list[Message] = []
        for ex in self.exchanges[:upto]:
            if ex.answered:
                out += [Message("user", ex.prompt), Message("assistant", ex.answer)]
        return tuple(out)

    def messages(self, upto: int | None = None) -> tuple[Message, ...]:
        """Messages for a reply to exchange `upto` (default: the last): every earlier
        answered exchange, then that prompt."""
        upto = len(self.exchanges) - 1 if upto is None else upto
        ex = self.exchanges[upto]
        return (*self.context(upto), Message("user", ex.prompt), *tool_rounds.messages(ex.rounds))

    def last_settings(self) -> dict[str, Any]:
        """What the latest reply was made with (`model`, `endpoint`, sampling...)."""
        return next((ex.settings for ex in reversed(self.exchanges) if ex.settings), {})

    def request(self, settings: Settings) -> Request:
        return settings.request(self.messages())

    # -- changes (each one a short History transaction) -------------------------------

    def add_prompt(
        self, text: str, model: str, settings: Settings, title: str = "", at: int | None = None
    ) -> Exchange:
        """Add a prompt and the (empty) row of its reply, which the generation fills in as
        it streams, together (the first prompt starts the conversation, titled `title` or,
        without one, from the prompt). With `at`, the prompt is a new version of exchange
        `at` (an edit): that exchange and those after it leave this branch, kept in
        History."""
        if self.id is None:
            self.id = self.history.new_conversation(make_title(title), model, self.source)
        if at is not None:
            del self.exchanges[at:]
        ex = Exchange(text)
        sampling = _sampling_record(settings)
        ex.prompt_id, ex.reply_id = self.history.add_exchange(
            self.id, text, model, sampling, parent=self._end()
        )
        ex.settings = sampling
        if at is not None:
            ex.prompt_version = self.history.branch(self.id).version(ex.prompt_id)
        self.exchanges.append(ex)
        return ex

    def _end(self) -> int | None:
        """The last message of this branch (what a new prompt follows)."""
        if not self.exchanges:
            return None
        last = self.exchanges[-1]
        return last.reply_id if last.reply_id is not None else last.prompt_id

    def regenerate(self, at: int) -> Exchange:
        """Make exchange `at` ready for another reply: the one it has stays in History as
        an earlier version (one with no text is dropped), and the exchanges after it leave
        this branch."""
        del self.exchanges[at + 1 :]
        ex = self.exchanges[at]
        if ex.answer or ex.reasoning or ex.rounds:
            ex.reply_id = None
            ex.answer, ex.reasoning, ex.stats, ex.finish_reason = "", "", None, None
        else:
            self.drop_reply(ex)
        ex.rounds = []
        return ex

    def save_rounds(
        self, ex: Exchange, finish_reason: str | None = None, *, cleared: bool = False
    ) -> None:
        """Keep `ex`'s tool rounds with its reply (the next round's text replaces the
        reply's own as it streams; `cleared`: no next round, the reply's text is empty)."""
        if ex.reply_id is not None:
            self.history.update_message(
                ex.reply_id,
                content="" if cleared else None,
                reasoning="" if cleared else None,
                tool_rounds=tool_rounds.to_record(ex.rounds),
                finish_reason=finish_reason,
            )

    def start_reply(self, ex: Exchange, model: str, settings: Settings) -> int:
        """The reply row for `ex`: the one `add_prompt` made, else a new version of it
        (regenerate)."""
        assert self.id is not None
        if ex.reply_id is None:
            ex.settings = _sampling_record(settings)
            ex.reply_id = self.history.add_message(
                self.id, "assistant", "", model=model, sampling=ex.settings, parent=ex.prompt_id
            )
            ex.reply_version = self.history.branch(self.id).version(ex.reply_id)
        ex.answer, ex.reasoning, ex.stats, ex.finish_reason = "", "", None, None
        return ex.reply_id

    def switch(self, at: int, part: str, step: int) -> bool:
        """Show the version `step` places from exchange `at`'s prompt (`part` "prompt") or
        reply ("reply"), to the newest end of its branch; False when there is none."""
        ex = self.exchanges[at]
        mine = ex.prompt_id if part == "prompt" else ex.reply_id
        if self.id is None or mine is None:
            return False
        target = self.history.sibling(self.id, mine, step)
        if target is None:
            return False
        self.history.show(self.id, target)
        self.exchanges = pair(self.history.branch(self.id))
        return True

    def drop_reply(self, ex: Exchange) -> None:
        """Forget the last reply (regenerate, or a reply that failed before any text)."""
        if ex.reply_id is not None:
            self.history.delete_message(ex.reply_id)
        ex.reply_id = None
        ex.answer, ex.reasoning, ex.stats, ex.finish_reason = "", "", None, None

    def keep_partial(self, ex: Exchange, answer: str, reasoning: str) -> None:
        """A reply that broke off: save what was shown, marked as ended by an error."""
        ex.answer, ex.reasoning, ex.finish_reason = answer, reasoning, "error"
        if ex.reply_id is not None:
            self.history.update_message(
                ex.reply_id, content=answer, reasoning=reasoning, finish_reason="error"
            )

    def withdraw_last(self) -> Exchange | None:
        """The last prompt got no reply at all (the model failed before its first token):
        forget it, and the conversation too if that was all it held."""
        if not self.exchanges:
            return None
        ex = self.exchanges.pop()
        self.drop_reply(ex)
        if ex.prompt_id is not None:
            self.history.delete_message(ex.prompt_id)
        if self.id is not None and not self.history.messages(self.id):
            self.history.delete(self.id)
            self.id = None
        return ex


def _sampling_record(settings: Settings) -> dict[str, Any]:
    """What a reply row keeps of its settings (`last_settings` reads it back)."""
    sampling: dict[str, Any] = asdict(settings.sampling)
    sampling.update(
        think=settings.think,
        math=settings.math,
        think_budget=settings.guards.think_budget,
        loop_guard=settings.guards.loop_guard,
        model=settings.model,  # as given (path, catalog name): what reopening loads
        endpoint=settings.endpoint,
    )
    return sampling


def with_its_model(settings: Settings, conversation: Dialogue, explicit: bool) -> Settings:
    """A reopened conversation keeps the model (or server) its last reply used, unless the
    command line named one (`explicit`)."""
    used = conversation.last_settings()
    model, endpoint = used.get("model"), used.get("endpoint")
    if explicit or not (model or endpoint):
        return settings
    return replace(settings, model=model, endpoint=endpoint or None)


def pair(branch: Branch) -> list[Exchange]:
    """A branch's messages as exchanges: each prompt with the reply that follows it, if
    any, and how many versions each has."""
    out: list[Exchange] = []
    for m in branch.messages:
        if m.role == "user":
            out.append(Exchange(m.content, prompt_id=m.id, prompt_version=branch.version(m.id)))
        elif out and out[-1].reply_id is None:
            ex = out[-1]
            ex.reply_id = m.id
            ex.answer, ex.reasoning = m.content, m.reasoning
            ex.stats, ex.finish_reason = m.stats, m.finish_reason
            ex.settings = m.sampling
            ex.reply_version = branch.version(m.id)
            ex.rounds = tool_rounds.from_record(m.tool_rounds)
    return out
