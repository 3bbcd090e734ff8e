"""What History stores and returns: conversations, messages, search hits, titles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from r1chat.core.messages import Message

StoredRole = Literal["user", "assistant"]
TITLE_MAX = 60


@dataclass(frozen=True, slots=True)
class Conversation:
    id: int
    title: str
    model: str
    created_at: float  # Unix time, seconds
    updated_at: float
    turns: int  # number of user messages
    source: str = "chat"  # "chat" or "ask": where it was started

    @property
    def display_title(self) -> str:
        return self.title or "(untitled)"


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    conversation_id: int
    role: StoredRole
    content: str  # the answer, for assistant messages (reasoning is kept apart)
    reasoning: str
    model: str
    sampling: dict[str, Any] | None
    stats: dict[str, Any] | None  # `r1chat.core.events.Stats.to_dict()`
    finish_reason: str | None
    thinking_stopped_by: str | None
    created_at: float
    updated_at: float
    parent_id: int | None = None  # the message it follows (None: a first prompt)
    tool_rounds: list[dict[str, Any]] | None = None  # a reply's rounds of tool calls

    def to_message(self) -> Message:
        """The message to re-send to the model (answers only; R1 drops old reasoning)."""
        return Message(self.role, self.content)


@dataclass(frozen=True, slots=True)
class Branch:
    """The messages shown of a conversation, first to last (the branch shown last), and
    each one's versions: an edited prompt or a regenerated reply sits beside the one it
    replaced."""

    messages: list[StoredMessage]
    versions: dict[int, tuple[int, int]]  # message id -> (its place, 1-based; how many)

    def version(self, message_id: int | None) -> tuple[int, int]:
        return self.versions.get(message_id, (1, 1)) if message_id is not None else (1, 1)


@dataclass(frozen=True, slots=True)
class SearchHit:
    conversation_id: int
    message_id: int
    role: StoredRole
    title: str  # of the conversation
    snippet: str  # one line; matches wrapped in the `mark` strings given to `search`
    updated_at: float  # of the message


def make_title(prompt: str) -> str:
    """A conversation title from its first prompt: first non-blank line, about 60 chars."""
    line = next((ln for ln in prompt.splitlines() if ln.strip()), "")
    line = " ".join(line.split())
    if len(line) <= TITLE_MAX:
        return line
    cut = line[: TITLE_MAX - 1]
    space = cut.rfind(" ")
    if space >= TITLE_MAX // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-") + "…"


def fts_query(text: str) -> str:
    """An FTS5 MATCH expression for what the user typed: all words, last one as a prefix.

    Each word is a quoted string, so operators (`AND`, `NEAR`, `*`, `"`, `-`, `:`) are
    searched as text and never raise a syntax error. Returns "" when there is no word.
    """
    words = [w for w in text.replace("\x00", " ").split() if any(ch.isalnum() for ch in w)]
    if not words:
        return ""
    quoted = ['"' + w.replace('"', '""') + '"' for w in words]
    quoted[-1] += "*"
    return " ".join(quoted)


def iso_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")
