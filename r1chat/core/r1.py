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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from r1chat.core.messages import Message, ToolCall

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
USER, ASSISTANT = "<｜User｜>", "<｜Assistant｜>"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
OPEN_REASONING = THINK_OPEN + "\n"
"""What the generation prompt ends with after `<｜Assistant｜>`: the reasoning is open."""
EMPTY_REASONING = "\n" + THINK_CLOSE + "\n\n"
"""Appended after `OPEN_REASONING` for `--no-think`: an empty reasoning, then the answer."""

CALLS_BEGIN, CALLS_END = "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"
CALL_BEGIN, CALL_END, TOOL_SEP = "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁sep｜>"
OUTPUTS_BEGIN, OUTPUTS_END = "<｜tool▁outputs▁begin｜>", "<｜tool▁outputs▁end｜>"
OUTPUT_BEGIN, OUTPUT_END = "<｜tool▁output▁begin｜>", "<｜tool▁output▁end｜>"
TOOL_MARKERS = (
    *(CALLS_BEGIN, CALLS_END, CALL_BEGIN, CALL_END, TOOL_SEP),
    *(OUTPUTS_BEGIN, OUTPUTS_END, OUTPUT_BEGIN, OUTPUT_END),
)
"""DeepSeek's tool-call tokens (R1-0528's template; special in its vocabulary, plain text in
the first distills')."""
CALL_EXAMPLE = (
    "\n\nExample function tool call syntax:\n\n"
    + CALLS_BEGIN
    + CALL_BEGIN
    + "function"
    + TOOL_SEP
    + 'example_function_name\n```json\n{\n  "arg1": "some_value"\n}\n```'
    + CALL_END
    + CALLS_END
    + "\n\n"
)
"""What follows the tools' listing in the prompt (as llama.cpp's R1 tool template)."""

_SPECIAL_SPELLING = re.compile(
    r"<(?=｜)"  # DeepSeek's markers: <｜User｜>, <｜end▁of▁sentence｜>, ...
    r"|<(?=\|\w+\|>)"  # Qwen's and Llama-3's: <|fim_pad|>, <|EOT|>, <|eot_id|>, ...
    r"|<(?=/?(?:think|tool_call)>)"  # user-defined tokens both distill families carry
    r"|<(?=/s>)"  # a normal token in R1-Distill-Qwen that llama.cpp makes a control token
    r"|\[(?=PAD\d+\])",  # the Qwen vocabulary's unused [PAD151665]...
    re.ASCII,
)
"""Where a special token of the R1-Distill-Qwen or -Llama vocabulary is spelled in text."""


def neutralize(text: str) -> str:
    """Keep every special token's spelling in message text from becoming that token on a
    server: a zero-width space goes after its first character."""
    if "<" not in text and "[" not in text:
        return text
    return _SPECIAL_SPELLING.sub("\\g<0>\u200b", text)


MARKUP, TEXT = "markup", "text"
Part = tuple[str, str]  # (MARKUP | TEXT, text)


def prompt_parts(
    messages: Sequence[Message],
    *,
    think: bool = True,
    reply: bool = True,
    tools: str = "",
) -> list[Part]:
    """The R1 prompt for prepared `messages` (BOS not included), as pieces of markup (our
    markers, written as special tokens) and message text (never special). The local
    engine encodes each piece to token ids; `prompt_text` joins them for a server.
    Without `reply`, it stops after the last message: the start of the next prompt.

    `tools` (their listing) is for a model with tool tokens: the listing and an example
    call come first, and calls and results are written in R1-0528's markers, as its
    template does (after results the assistant's turn goes on, without a new marker)."""
    parts: list[Part] = [(TEXT, tools), (MARKUP, CALL_EXAMPLE)] if tools else []
    outputs = 0  # tool results in the current run
    for m in messages:
        if outputs and m.role != "tool":
            parts.append((MARKUP, OUTPUTS_END))
        turn = [] if outputs else [(MARKUP, ASSISTANT)]
        if m.role == "user":
            parts += [(MARKUP, USER), (TEXT, m.content)]
        elif m.role == "assistant":
            parts += [*turn, (TEXT, m.content), *call_parts(m.tool_calls), (MARKUP, EOS)]
        elif m.role == "tool":
            opening = OUTPUT_BEGIN if outputs else OUTPUTS_BEGIN + OUTPUT_BEGIN
            parts += [(MARKUP, ("\n" if outputs else "") + opening), (TEXT, m.content)]
            parts.append((MARKUP, OUTPUT_END))
        outputs = outputs + 1 if m.role == "tool" else 0
    if outputs:
        parts.append((MARKUP, OUTPUTS_END))
    if reply:
        opening = "" if outputs else ASSISTANT
        parts.append((MARKUP, opening + OPEN_REASONING + ("" if think else EMPTY_REASONING)))
    return [p for p in parts if p[1]]


def call_parts(calls: Sequence[ToolCall]) -> list[Part]:
    """An answer's tool calls in R1-0528's markers (names and arguments as text)."""
    if not calls:
        return []
    parts: list[Part] = [(MARKUP, CALLS_BEGIN)]
    for i, call in enumerate(calls):
        head = ("\n" if i else "") + CALL_BEGIN + "function" + TOOL_SEP
        parts += [(MARKUP, head), (TEXT, call.name), (MARKUP, "\n```json\n")]
        parts += [(TEXT, call.arguments), (MARKUP, "\n```" + CALL_END)]
    return [*parts, (MARKUP, CALLS_END)]


def prompt_text(messages: Sequence[Message], *, think: bool = True) -> str:
    """The R1 prompt as text, message text neutralised (BOS is left to the server)."""
    return "".join(
        neutralize(t) if kind == TEXT else t for kind, t in prompt_parts(messages, think=think)
    )
