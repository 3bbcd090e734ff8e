"""What a conversation that outgrows the context does: leave out its oldest turns, or stop.

R1 replies are long, so before a reply starts there must be room for it: a reserve (the
thinking budget when one is set, else `DEFAULT_RESERVE` or a quarter of the context, the
smaller). When the prompt leaves less, `drop-oldest` leaves the oldest exchanges (a user
message and its reply) out of what the model sees, never the newest message (nor the
first exchange with `keep_first`, nor system text); `stop` refuses, saying what to do.
Nothing is deleted from the history: only the prompt is shorter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from r1chat.core.errors import PromptTooLong
from r1chat.core.messages import Message
from r1chat.core.request import ANSWER_ROOM, prompt_problem

POLICIES = ("drop-oldest", "stop")
DEFAULT_RESERVE = 4096


@dataclass(frozen=True, slots=True)
class Overflow:
    policy: str = "drop-oldest"
    reserve: int | None = None  # None: the default rule above
    keep_first: bool = False

    def room(self, n_ctx: int, think_budget: int | None) -> int:
        """Tokens to keep free for the reply."""
        if self.reserve is not None:
            return self.reserve
        if think_budget is not None:
            return min(think_budget + ANSWER_ROOM, n_ctx // 2)
        return min(DEFAULT_RESERVE, n_ctx // 4)


@dataclass(frozen=True, slots=True)
class Fitted:
    messages: tuple[Message, ...]
    left_out: int  # exchanges left out
    tokens: int  # the prompt's tokens now


class ContextFull(PromptTooLong):
    """`stop`: the conversation leaves no room for a reply."""


def fit(
    messages: Sequence[Message],
    count: Callable[[tuple[Message, ...]], int],
    n_ctx: int,
    overflow: Overflow,
    think_budget: int | None = None,
) -> Fitted:
    """The messages to send (`count` gives a prompt's tokens), after the policy."""
    kept = tuple(messages)
    tokens = count(kept)
    room = overflow.room(n_ctx, think_budget)
    if tokens + room <= n_ctx:
        return Fitted(kept, 0, tokens)
    if overflow.policy == "stop":
        raise ContextFull(
            f"the conversation is {tokens:,} tokens and the reply needs {room:,} more, but the "
            f"context holds {n_ctx:,}: start a new chat, raise --ctx, or let the oldest turns "
            "go (--overflow drop-oldest)"
        )
    systems = tuple(m for m in kept if m.role == "system")  # always sent
    exchanges = _exchanges(tuple(m for m in kept if m.role != "system"))
    head = exchanges[:1] if overflow.keep_first and len(exchanges) > 1 else []
    rest = exchanges[len(head) :]
    left_out = 0
    while len(rest) > 1 and tokens + room > n_ctx:
        rest = rest[1:]
        left_out += 1
        kept = systems + tuple(m for ex in (*head, *rest) for m in ex)
        tokens = count(kept)
    alone = "the newest message alone" if len(rest) == 1 and not head else "what is left"
    if problem := prompt_problem(tokens, n_ctx, alone):
        raise PromptTooLong(f"{problem}; raise --ctx or shorten it")
    return Fitted(kept, left_out, tokens)


def _exchanges(messages: tuple[Message, ...]) -> list[tuple[Message, ...]]:
    """The messages in exchanges: each user message with the replies after it."""
    out: list[list[Message]] = []
    for m in messages:
        if m.role == "user" or not out:
            out.append([m])
        else:
            out[-1].append(m)
    return [tuple(ex) for ex in out]
