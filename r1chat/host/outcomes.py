"""What the model host reports to a front end, besides the turn's own events.

Every job puts `(job_id, item)` pairs on the front end's inbox. Failures are neutral
(`Failed` with a `Why`): the chat shows the message, `serve` picks an HTTP status for it.
`batch` joins runs of reasoning and answer text, so a front end appends once per run
instead of once per token.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Union

from r1chat.core.events import AnswerDelta, EngineInfo, Event, ThinkingDelta


@dataclass(frozen=True, slots=True)
class Loading:
    """A model began to load (the one `model` names)."""

    model: str


@dataclass(frozen=True, slots=True)
class Loaded:
    info: EngineInfo
    seconds: float


@dataclass(frozen=True, slots=True)
class LoadFailed:
    """A `Load` job's model could not be loaded (a reply's is `Failed(why=LOAD)`)."""

    message: str


class Why(Enum):
    """Why a job ended without a reply, in the host's terms (a front end words it)."""

    TOO_LONG = "too_long"  # the prompt leaves no room in the context
    BAD_SCHEMA = "bad_schema"  # the answer's schema (or a tool's) cannot be a grammar
    CANCELLED = "cancelled"  # stopped before its reply began (its asker went away)
    CRASHED = "crashed"  # the model process died while it ran
    LOAD = "load"  # its model could not be loaded
    ERROR = "error"  # the engine refused it (a user's error, worded for them)
    BUG = "bug"  # an internal error (its traceback is in the log)


@dataclass(frozen=True, slots=True)
class Failed:
    """A job that ended without a reply: `message` says why in words, `why` in kind;
    for `Why.CRASHED`, `cause` says how the process ended (`was killed by SIGSEGV`); for
    `Why.TOO_LONG`, `tokens` is the prompt's size where it was counted (`Reply.sizes`)."""

    message: str
    why: Why = Why.ERROR
    cause: str = ""
    tokens: int = 0


@dataclass(frozen=True, slots=True)
class Accepted:
    """A reply's prompt fits (or is read when its turn comes): a stream may begin."""


@dataclass(frozen=True, slots=True)
class Started:
    """A reply left the queue: its model's load or its generation begins."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """A dry run's answer: the prompt's text, its token ids (where the engine works in
    tokens) and how many tokens it takes (0 where the engine cannot count)."""

    text: str
    tokens: tuple[int, ...]
    count: int = 0


@dataclass(frozen=True, slots=True)
class ContextUsed:
    """Tokens the conversation will re-send with the next prompt."""

    tokens: int
    n_ctx: int


@dataclass(frozen=True, slots=True)
class LeftOut:
    """The reply's prompt leaves out the oldest `turns` exchanges (over the context);
    with `keep_first`, the first exchange was kept and those after it left out."""

    turns: int
    keep_first: bool = False


@dataclass(frozen=True, slots=True)
class Prefilled:
    """The idle-time prefill read `tokens` of the conversation ahead of the next prompt
    (fewer when a reply cut it short)."""

    tokens: int


@dataclass(frozen=True, slots=True)
class JobEnded:
    pass


@dataclass(frozen=True, slots=True)
class SaveNotice:
    """About saving replies (not tied to one on screen): a save failed, landed at last, or
    never did."""

    message: str
    problem: bool = False


@dataclass(frozen=True, slots=True)
class HostLost:
    """The model process died (its running jobs failed); nothing is loaded now."""

    message: str


@dataclass(frozen=True, slots=True)
class ThinkingChunk:
    """Several `ThinkingDelta`s joined; `count` of them (about one per token)."""

    text: str
    count: int


@dataclass(frozen=True, slots=True)
class AnswerChunk:
    """Several `AnswerDelta`s joined; `count` of them."""

    text: str
    count: int


Item = Union[  # noqa: UP007 - a runtime alias
    Event,
    Loading,
    Loaded,
    LoadFailed,
    Failed,
    Accepted,
    Started,
    Rendered,
    ContextUsed,
    LeftOut,
    Prefilled,
    JobEnded,
    HostLost,
    SaveNotice,
    ThinkingChunk,
    AnswerChunk,
]


def urgent(item: tuple[int, Item]) -> bool:
    """An item someone waits for (a job's end, a load's, a reply's go-ahead): a model
    process sends it at once (`frames.Outbox`)."""
    return isinstance(item[1], (JobEnded, Loaded, LoadFailed, Accepted, Failed))


def batch(items: Iterable[tuple[int, Item]]) -> list[tuple[int, Item]]:
    """Join runs of thinking and answer text of one job (deltas or chunks already
    joined elsewhere), so the UI appends once per run instead of once per token."""
    out: list[tuple[int, Item]] = []
    texts: list[str] = []
    run_job, run_kind, count = -1, "", 0

    def flush() -> None:
        if run_kind == "thinking":
            out.append((run_job, ThinkingChunk("".join(texts), count)))
        elif run_kind == "answer":
            out.append((run_job, AnswerChunk("".join(texts), count)))
        texts.clear()

    for job, item in items:
        if isinstance(item, (ThinkingDelta, ThinkingChunk)):
            kind = "thinking"
        elif isinstance(item, (AnswerDelta, AnswerChunk)):
            kind = "answer"
        else:
            kind = ""
        if not kind or kind != run_kind or job != run_job:
            flush()
            run_job, run_kind, count = job, kind, 0
            if not kind:
                out.append((job, item))
                continue
        texts.append(item.text)  # type: ignore[union-attr]
        count += item.count if isinstance(item, (ThinkingChunk, AnswerChunk)) else 1
    flush()
    return out
