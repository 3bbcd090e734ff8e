"""The R1 chat format in one place: its markers, the prompt as text, and neutralising.

`<｜begin▁of▁sentence｜>{system}<｜User｜>{user}<｜Assistant｜>{answer}<｜end▁of▁sentence｜>…
<｜Assistant｜><think>\\n`; earlier answers are re-sent without their reasoning. The local
engine builds the same prompt as token ids (`r1chat.engine.local.prompt`); servers take
it as text, so message text there is neutralised: a marker spelled inside it gets a
zero-width space, so the server's tokenizer cannot read it as the special token.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
USER, ASSISTANT = "<｜User｜>", "<｜Assistant｜>"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
OPEN_REASONING = THINK_OPEN + "\n"
"""What the generation prompt ends with after `<｜Assistant｜>`: the reasoning is open."""
EMPTY_REASONING = "\n" + THINK_CLOSE + "\n\n"
"""Appended after `OPEN_REASONING` for `--no-think`: an empty reasoning, then the answer."""

_SPECIAL_SPELLING = re.compile(
    r"<(?=｜)"  # DeepSeek's markers: <｜User｜>, <｜end▁of▁sentence｜>, ...
    r"|<(?=\|\w+\|>)"  # Qwen's and Llama-3's: <|fim_pad|>, <|EOT|>, <|eot_id|>, ...
    r"|<(?=/?(?:think|tool_call)>)"  # user-defined tokens both distill families carry
    r"|<(?=/s>)"  # a normal token in R1-Distill-Qwen that llama.cpp makes a control token
    r"|\[(?=PAD\d+\])",  # the Qwen vocabulary's unused [PAD151665]...
    re.ASCII,
)
"""Where a special token of the R1-Distill-Qwen or -Llama vocabulary is spelled in text."""


class Turn(Protocol):
    """A message (`r1chat.core.messages.Message`): who said it and what."""

    @property
    def role(self) -> str: ...

    @property
    def content(self) -> str: ...


def neutralize(text: str) -> str:
    """Keep every special token's spelling in message text from becoming that token on a
    server: a zero-width space goes after its first character."""
    if "<" not in text and "[" not in text:
        return text
    return _SPECIAL_SPELLING.sub("\\g<0>\u200b", text)


MARKUP, TEXT = "markup", "text"
Part = tuple[str, str]  # (MARKUP | TEXT, text)


def prompt_parts(messages: Sequence[Turn], *, think: bool = True, reply: bool = True) -> list[Part]:
    """The R1 prompt for prepared `messages` (BOS not included), as pieces of markup (our
    markers, written as special tokens) and message text (never special). The local
    engine encodes each piece to token ids; `prompt_text` joins them for a server.
    Without `reply`, it stops after the last message: the start of the next prompt."""
    parts: list[Part] = []
    for m in messages:
        if m.role == "user":
            parts += [(MARKUP, USER), (TEXT, m.content)]
        elif m.role == "assistant":
            parts += [(MARKUP, ASSISTANT), (TEXT, m.content), (MARKUP, EOS)]
    if reply:
        parts.append((MARKUP, ASSISTANT + OPEN_REASONING + ("" if think else EMPTY_REASONING)))
    return parts


def prompt_text(messages: Sequence[Turn], *, think: bool = True) -> str:
    """The R1 prompt as text, message text neutralised (BOS is left to the server)."""
    return "".join(
        neutralize(t) if kind == TEXT else t for kind, t in prompt_parts(messages, think=think)
    )
