"""The contract every engine keeps (local llama.cpp, remote OpenAI-compatible server).

Front ends never hold an engine's internals: `r1chat.launch.local` opens one, and
`r1chat.core.turn.run_turn` turns its stream into events.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Protocol

from r1chat.core.events import Delta, EngineInfo, PromptProgress
from r1chat.core.request import Control, Reading, Request, Sampling
from r1chat.core.tools import Tools


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    """The prompt exactly as the model sees it (`tokens` empty where the engine does not
    work in tokens: a remote server)."""

    text: str
    tokens: tuple[int, ...] = ()


class Engine(Protocol):
    """A source of tokens. Not thread-safe: one stream at a time per engine."""

    info: EngineInfo
    """The model, backend, offload and context size, for the status line and `--json`;
    `info.caps` declares what it can do besides streaming (the methods marked so below
    are called only where they say it can)."""

    finish_reason: str
    """Why the last stream ended: `stop`, `length` or `cancelled`."""

    def opens_thinking(self, request: Request) -> bool:
        """Whether the prompt for `request` ends inside an open `<think>` block, so the
        reply starts as reasoning without writing `<think>` itself."""
        ...

    def render(self, request: Request) -> RenderedPrompt:
        """The prompt for `request`, without generating (`--dry-run`)."""
        ...

    def count_prompt(self, request: Request) -> int:
        """The tokens the prompt for `request` takes (context meters, the overflow
        policy). Only where `info.caps.counts`."""
        ...

    def prefill(self, request: Request, control: Control) -> int:
        """Evaluate the conversation (its last message an answer) as the next prompt will
        begin, until `control` is cancelled; returns the tokens evaluated. Only where
        `info.caps.prefill`."""
        ...

    def warm_up(self) -> None:
        """Run the model once, before any reply, so that the first reply does not pay
        for its first use. Only where `info.caps.in_process`."""
        ...

    def stream(self, request: Request, control: Control) -> Iterator[Delta | PromptProgress]:
        """Generate the reply, yielding progress while the prompt is read, then deltas.

        Ends at an end-of-generation token, `max_tokens`, a full context, or
        `control.cancel()`; `finish_reason` then says which. Text passed to
        `control.inject()` is inserted into the reply as if generated. Errors a user can
        cause are raised as `R1ChatError`.
        """
        ...

    def close(self) -> None:
        """Free the model (or the connection); the engine is unusable afterwards."""
        ...


class TextEngine(Engine, Protocol):
    """An engine that also works in tokens and continues a raw prompt (the local one:
    `info.caps.tokens`)."""

    def prompt_tokens(self, request: Request, reading: Reading | None = None) -> list[int]:
        """The prompt for `request`, as token ids (what `render` spells out); `reading`
        stops it past a context or once cancelled."""
        ...

    def reply(
        self,
        prompt: list[int],
        sampling: Sampling,
        control: Control,
        tools: Tools | None = None,
    ) -> Generator[Delta | PromptProgress, None, str]:
        """`stream` for a prompt already read into tokens (`prompt_tokens`); the answer
        may call `tools`. Returns the finish reason (replies may run side by side)."""
        ...

    def complete(
        self, text: str, sampling: Sampling, control: Control
    ) -> Generator[Delta | PromptProgress, None, str]:
        """Like `reply`, for prompt `text` written by the caller, special tokens and all."""
        ...
