"""What a reply is asked for (`Request`, `Sampling`) and how it is steered while it runs
(`Control`): shared by every engine and every front end."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace

from r1chat.core.errors import PromptCancelled, PromptTooLong
from r1chat.core.messages import Message
from r1chat.core.tools import Tools

ANSWER_ROOM = 16
"""A prompt must leave at least this many tokens of the context to answer in."""

DEFAULT_CTX = 8192
"""The context size when none is set (`--ctx`, `[model] ctx`)."""

BYTES_PER_TOKEN = 32
"""The most text a token of context could stand for, as a bound on input: text runs 3 to
4 bytes a token, a JSON escape (`\\u4e2d`) two or three times that."""


def input_limit(n_ctx: int | None) -> int:
    """The bytes of input (a file, stdin, a request body) worth reading for a context of
    `n_ctx` tokens (unknown: a large one's), at least 1 MiB."""
    return max(1 << 20, (n_ctx or 0) * BYTES_PER_TOKEN)


def prompt_problem(tokens: int, n_ctx: int, what: str = "the prompt") -> str | None:
    """Why `what` (a prompt of `tokens`) leaves no room to answer in a context of `n_ctx`
    (None when it fits): the one rule every caller applies, in one wording."""
    if tokens + ANSWER_ROOM <= n_ctx:
        return None
    return f"{what} is {tokens:,} tokens but the context holds {n_ctx:,}"


@dataclass(frozen=True, slots=True)
class Sampling:
    """Sampling settings; the defaults are DeepSeek's advice for R1."""

    temperature: float = 0.6
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.0
    max_tokens: int | None = None  # None: until the context is full
    seed: int | None = None  # None: random
    schema: str | None = None  # the answer (after the reasoning) is JSON under this JSON schema


@dataclass(frozen=True, slots=True)
class Request:
    """One reply to generate: the conversation so far (last turn is the user's)."""

    messages: tuple[Message, ...]
    sampling: Sampling = field(default_factory=Sampling)
    system: str = ""
    think: bool = True  # False: prefill an empty reasoning (`--no-think`)
    math: bool = False  # append DeepSeek's \boxed{} instruction
    tools: Tools | None = None  # functions the answer may call

    def answered(self, answer: str) -> Request:
        """The conversation with `answer` as the model's reply: what the next prompt
        begins with (its idle-time prefill, the context it fills)."""
        return replace(self, messages=(*self.messages, Message("assistant", answer)))


class Control:
    """Shared between a generation and whoever watches it; safe across threads.

    `cancel()` stops the stream between tokens (and between prompt chunks).
    `inject(text)` asks the engine to insert `text` into the reply as if generated
    (used to close the reasoning when a budget or the loop guard trips).
    """

    def __init__(self) -> None:
        self._cancelled = threading.Event()
        self._injection: str | None = None
        self._lock = threading.Lock()

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def inject(self, text: str) -> None:
        with self._lock:
            self._injection = (self._injection or "") + text

    def take_injection(self) -> str | None:
        if self._injection is None:  # checked once per token: skip the lock when empty
            return None
        with self._lock:
            text, self._injection = self._injection, None
            return text


class Reading:
    """How much of a prompt may be read into tokens: at most `limit` (then PromptTooLong,
    at once, however long the rest is), and nothing more once `control` is cancelled
    (PromptCancelled). A server reads clients' prompts so: a huge one costs a context's
    worth of work, and none after its client leaves."""

    def __init__(self, n_ctx: int, control: Control | None = None) -> None:
        self.n_ctx, self.control = n_ctx, control
        self.tokens = 0

    def add(self, tokens: int) -> None:
        """Count `tokens` more (raises when reading should stop)."""
        self.tokens += tokens
        if self.control is not None and self.control.cancelled:
            raise PromptCancelled("the prompt's reader went away")
        if problem := prompt_problem(self.tokens, self.n_ctx, "the prompt (read so far)"):
            raise PromptTooLong(problem)
