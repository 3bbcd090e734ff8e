"""Conversation messages and the R1 rules for re-sending them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]

MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call in an answer: its id, the tool's name, the arguments as JSON text."""

    id: str
    name: str
    arguments: str

    @staticmethod
    def new(name: str, arguments: Any) -> ToolCall:
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        return ToolCall("call_" + uuid.uuid4().hex[:24], name, text)


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()  # an assistant turn's calls
    name: str = ""  # a tool result's tool


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
            out[first_user] = replace(out[first_user], content=folded)
    if math and out and out[-1].role == "user":
        out[-1] = replace(out[-1], content=f"{out[-1].content}\n\n{MATH_INSTRUCTION}")
    return out
