"""The words that sum up a reply's reasoning: `Thought for 14.1s · 402 tokens`.

One function writes them (`thought`); the reasoning pane, `ask`, history listings and
exports all call it.
"""

from __future__ import annotations

from typing import Any

_STOPPERS = {
    "budget": "the thinking budget",
    "loop": "the loop guard",
    "max_tokens": "max tokens",
    "answer_room": "max tokens (leaving room to answer)",
    "context": "the end of the context",
    "error": "an error",
}
SKIPPED = "No reasoning (the model answered directly)"

ENDINGS = {
    "cancelled": "Stopped",
    "length": "Cut: the token limit (max tokens or the context) was reached",
    "loop": "Stopped: the answer was repeating itself",
    "error": "The reply ended with an error",
}
"""How a reply that did not end by itself ended, by its finish reason (the chat's note
under a reply, `history show` and exports)."""


def ending(finish_reason: str | None) -> str:
    """`ENDINGS`' words for a finish reason; "" for one that ended by itself."""
    if not finish_reason or finish_reason == "stop":
        return ""
    return ENDINGS.get(finish_reason, f"The reply ended: {finish_reason}")


def stopped_by_text(stopped_by: str) -> str:
    """What ended the reasoning, in words: `cut by the thinking budget`."""
    return f"cut by {_STOPPERS.get(stopped_by, stopped_by)}"


def thought(seconds: float | None, tokens: int | None, stopped_by: str | None = None) -> str:
    """`Thought for 12.3s · 402 tokens · cut by …`; parts that are unknown are left out
    (`Reasoning · 40 tokens` without a time, plain `Reasoning` without either)."""
    if stopped_by == "cancel":  # stopped by the user
        return f"Stopped after {seconds or 0:.1f}s · {tokens or 0} tokens"
    parts: list[str] = []
    if isinstance(seconds, int | float) and seconds > 0:
        parts.append(f"Thought for {seconds:.1f}s")
    if isinstance(tokens, int) and tokens > 0:
        parts.append(f"{tokens} tokens")
    if stopped_by:
        parts.append(stopped_by_text(stopped_by))
    if not parts or not parts[0].startswith("Thought"):
        parts.insert(0, "Reasoning")
    return " · ".join(parts)


def from_stats(stats: dict[str, Any] | None, stopped_by: str | None = None) -> str:
    """`thought` from a stored reply's stats (`Stats.to_dict()`)."""
    stats = stats or {}
    return thought(
        stats.get("thinking_s"),
        stats.get("thinking_tokens"),
        stopped_by or stats.get("thinking_stopped_by"),
    )
