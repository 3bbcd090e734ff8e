"""What the engine side tells a front end, besides the turn's own events.

Every job puts `(job_id, item)` pairs on an inbox; `batch` joins runs of reasoning and
answer text, so a front end appends once per run instead of once per token.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, Union

from r1chat.core.events import AnswerDelta, EngineInfo, Event, ThinkingDelta


@dataclass(frozen=True, slots=True)
class Loading:
    model: str


@dataclass(frozen=True, slots=True)
class Loaded:
    info: EngineInfo
    seconds: float


@dataclass(frozen=True, slots=True)
class LoadFailed:
    message: str


@dataclass(frozen=True, slots=True)
class Failed:
    """A reply that could not start (no model, prompt too long, ...)."""

    message: str


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
class EngineLost:
    """The model process died (its jobs were failed); the model must be loaded again."""

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
    ContextUsed,
    LeftOut,
    Prefilled,
    JobEnded,
    EngineLost,
    SaveNotice,
    ThinkingChunk,
    AnswerChunk,
]


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


class Inbox(Protocol):
    """Where a job's items go: the front end's queue, or a child's `Outbox`."""

    def put(self, item: tuple[int, Item]) -> None: ...
