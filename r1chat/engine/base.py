"""What every engine offers: the request it takes and the contract of its stream."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from r1chat.events import Delta, PromptProgress
from r1chat.messages import Message


@dataclass(frozen=True, slots=True)
class Sampling:
    """Sampling settings; the defaults are DeepSeek's advice for R1."""

    temperature: float = 0.6
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.0
    max_tokens: int | None = None  # None: until the context is full
    seed: int | None = None  # None: random


@dataclass(frozen=True, slots=True)
class Request:
    """One reply to generate: the conversation so far (last turn is the user's)."""

    messages: tuple[Message, ...]
    sampling: Sampling = field(default_factory=Sampling)
    system: str = ""
    think: bool = True  # False: prefill an empty reasoning (`--no-think`)
    math: bool = False  # append DeepSeek's \boxed{} instruction


@dataclass(frozen=True, slots=True)
class EngineInfo:
    """What the status line and `--json` say about the running model."""

    model: str
    backend: str  # "CUDA", "Metal", "Vulkan", "CPU" or "remote"
    n_ctx: int
    gpu_layers: int = 0
    total_layers: int = 0
    threads: int = 0

    @property
    def offload(self) -> str:
        """`CUDA 29/29 layers`, `CPU 8 threads`, `remote`."""
        if self.backend == "remote":
            return "remote"
        if self.gpu_layers > 0 and self.backend not in ("CPU",):
            return f"{self.backend} {self.gpu_layers}/{self.total_layers} layers"
        return f"CPU {self.threads} thread{'s' if self.threads != 1 else ''}"


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    """The prompt exactly as the model sees it."""

    text: str
    tokens: tuple[int, ...] = ()


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


class Engine(Protocol):
    """A source of tokens. Not thread-safe: one stream at a time per engine."""

    info: EngineInfo

    finish_reason: str
    """Why the last stream ended: stop, length or cancelled."""

    def opens_thinking(self, request: Request) -> bool:
        """Whether the prompt for `request` ends inside an open `<think>` block."""
        ...

    def render(self, request: Request) -> RenderedPrompt:
        """The prompt for `request`, without generating."""
        ...

    def stream(self, request: Request, control: Control) -> Iterator[Delta | PromptProgress]:
        """Generate the reply, yielding progress while the prompt is read, then deltas.

        Ends at an end-of-generation token, `max_tokens`, a full context, or
        `control.cancel()`; `finish_reason` then says which. Errors a user can cause
        are raised as `R1ChatError`.
        """
        ...

    def close(self) -> None: ...
