"""Build prompts as token ids: the R1 format, or any GGUF's embedded chat template.

Markup (turn markers, BOS) is encoded with special tokens; every piece of message
text goes through `Vocab.encode_text`, so user text can never become a special token.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

from r1chat.core import r1
from r1chat.core.errors import R1ChatError
from r1chat.core.messages import Message, prepare
from r1chat.core.request import Reading, Request
from r1chat.core.tools import Tools, fold, listing
from r1chat.engine.local.vocab import Vocab

_SLOT = re.compile("\ue000(\\d+)\ue001")
_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class PromptBuilder:
    """Turns a prepared conversation into prompt token ids for one model."""

    def __init__(self, vocab: Vocab, template: Callable[[], Any]) -> None:
        """`template`: the model's chat template, compiled (`template_compiler`); called
        unless the vocabulary is R1's."""
        self.vocab = vocab
        markers = (r1.USER, r1.ASSISTANT, r1.THINK_OPEN, r1.THINK_CLOSE, r1.EOS)
        self.is_r1 = all(vocab.special_id(m) is not None for m in markers)
        self.tool_tokens = self.is_r1 and vocab.tool_tokens
        """Whether tool calls are written in R1-0528's markers (else folded into text)."""
        self._template = None if self.is_r1 else template()
        self._eos_text = vocab.render([vocab.eos])
        self._bos_text = vocab.render([vocab.bos]) if vocab.bos >= 0 else ""

    def for_request(
        self, request: Request, *, reply: bool = True, reading: Reading | None = None
    ) -> list[int]:
        """`build` for `request`'s conversation: DeepSeek's advice applied (`prepare`),
        tools and tool turns folded into text where the vocabulary has no tool tokens."""
        messages, tools = request.messages, request.tools
        if not self.tool_tokens:
            messages, tools = fold(messages, tools), None
        prepared = prepare(messages, system=request.system, math=request.math)
        return self.build(prepared, think=request.think, reply=reply, reading=reading, tools=tools)

    def opens_thinking(self, think: bool) -> bool:
        """Whether the prompt ends inside an open `<think>` block."""
        return self.is_r1 and think

    def build(
        self,
        messages: Sequence[Message],
        *,
        think: bool = True,
        reply: bool = True,
        reading: Reading | None = None,
        tools: Tools | None = None,
    ) -> list[int]:
        """The prompt's token ids; without `reply`, only the conversation (what the next
        prompt starts with: idle-time prefill); `reading` bounds the work. `tools` are
        listed in R1-0528's way (with `tool_tokens`; else `for_request` folds them)."""
        if self.is_r1:
            return self._build_r1(messages, think, reply, reading, tools)
        return self._build_template(messages, reply, reading)

    def _build_r1(
        self,
        messages: Sequence[Message],
        think: bool,
        reply: bool,
        reading: Reading | None,
        tools: Tools | None,
    ) -> list[int]:
        v = self.vocab
        out = [v.bos] if v.bos >= 0 else []
        if reading is not None:
            reading.add(len(out))
        listed = listing(tools) if tools is not None and tools.offered else ""
        parts = r1.prompt_parts(messages, think=think, reply=reply, tools=listed)
        for kind, text in parts:
            encode = v.encode_markup if kind == r1.MARKUP else v.encode_text
            out += encode(text, reading)
        return out

    def _build_template(
        self, messages: Sequence[Message], reply: bool = True, reading: Reading | None = None
    ) -> list[int]:
        slots = [m.content for m in messages]
        placeholders = [
            {"role": m.role, "content": f"\ue000{i}\ue001"} for i, m in enumerate(messages)
        ]
        try:
            text = self._template.render(  # type: ignore[union-attr]
                messages=placeholders,
                add_generation_prompt=reply,
                bos_token=self._bos_text,
                eos_token=self._eos_text,
            )
        except Exception as e:  # a template is foreign code: any failure is the model's
            raise R1ChatError(f"the model's chat template failed: {e}") from None
        out: list[int] = []
        pos = 0
        for m in _SLOT.finditer(text):
            out += self.vocab.encode_markup(text[pos : m.start()], reading)
            out += self.vocab.encode_text(slots[int(m.group(1))], reading)
            pos = m.end()
        out += self.vocab.encode_markup(text[pos:], reading)
        if self.vocab.add_bos and self.vocab.bos >= 0 and out[:1] != [self.vocab.bos]:
            out.insert(0, self.vocab.bos)
            if reading is not None:
                reading.add(1)
        return out


def template_compiler(chat_template: str | None, *, ahead: bool) -> Callable[[], Any]:
    """`chat_template` (ChatML when None), compiled when called; with `ahead`, compiling
    starts now, on a thread of its own."""
    source = chat_template or _CHATML
    if not ahead:
        return lambda: _compile(source)
    done: list[Any] = []

    def compile_it() -> None:
        try:
            done.append(_compile(source))
        except Exception as e:  # (raised where the template is wanted)
            done.append(e)

    worker = threading.Thread(target=compile_it, name="r1chat-template", daemon=True)
    worker.start()

    def compiled() -> Any:
        worker.join()
        if isinstance(done[0], Exception):
            raise done[0]
        return done[0]

    return compiled


def _compile(template: str) -> Any:
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals.update(raise_exception=raise_exception)
    try:
        return env.from_string(template)
    except TemplateError as e:
        raise R1ChatError(f"the model's chat template is invalid: {e}") from None
