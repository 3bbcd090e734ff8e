"""The words on a reasoning pane's title line, live and final."""

from __future__ import annotations

from typing import Any

from r1chat.core import titles as core_titles
from r1chat.core.events import ThinkingDone

WAITING = "Waiting to think…"
NO_THINK = "Reasoning off (no-think mode)"


def live(seconds: float, tokens: int) -> str:
    """`Thinking… 12.4s · 318 tokens` while the reasoning streams."""
    return f"Thinking… {seconds:.1f}s · {tokens} tokens"


def broken(seconds: float, tokens: int) -> str:
    """The reply broke off mid-thought (the model process died, say)."""
    return core_titles.thought(seconds, tokens, "error")


def final(done: ThinkingDone, *, think: bool = True, stopped: bool = False) -> str:
    """`Thought for 14.1s · 402 tokens` (and what cut it), or why there is none."""
    if done.skipped:
        return NO_THINK if not think else done.title
    if stopped:
        return core_titles.thought(done.seconds, done.tokens, "cancel")
    return done.title


def stored(reasoning: str, stats: dict[str, Any] | None, finish_reason: str | None) -> str:
    """The title of a reply loaded from history."""
    if stats is None:
        return "Reasoning (the reply was interrupted)" if reasoning else "No reasoning"
    tokens = int(stats.get("thinking_tokens") or 0)
    if not tokens and reasoning:  # text but no count (a server that does not say)
        return "Reasoning"
    done = ThinkingDone(
        float(stats.get("thinking_s") or 0.0),
        tokens,
        stats.get("thinking_stopped_by"),
        skipped=not reasoning,
    )
    stopped = finish_reason == "cancelled" and not done.skipped and done.stopped_by is None
    return final(done, stopped=stopped and not stats.get("answer_tokens"))
