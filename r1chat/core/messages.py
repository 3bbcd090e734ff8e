"""Conversation messages and the R1 rules for re-sending them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Role = Literal["system", "user", "assistant"]

MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str


def prepare(messages: Sequence[Message], *, system: str = "", math: bool = False) -> list[Message]:
    """Apply DeepSeek's advice: no system turn, maths suffix.

    System text (the `system` argument and any system messages) is folded into the first
    user turn; with `math`, the last user turn gets the step-by-step instruction. Assistant
    turns are answers as stored, their reasoning already split off when the reply streamed
    (so an answer that mentions `</think>` is re-sent whole).
    """
    systems = [system] if system else []
    systems += [m.content for m in messages if m.role == "system" and m.content]
    out: list[Message] = []
    for m in messages:
        if m.role == "system":
            continue
        out.append(m)
    if systems:
        first_user = next((i for i, m in enumerate(out) if m.role == "user"), None)
        if first_user is not None:
            folded = "\n\n".join([*systems, out[first_user].content])
            out[first_user] = Message("user", folded)
    if math and out and out[-1].role == "user":
        out[-1] = Message("user", f"{out[-1].content}\n\n{MATH_INSTRUCTION}")
    return out
