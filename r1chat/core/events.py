"""The event stream every engine produces and every front end consumes.

Engines yield `Delta`s (text as the model wrote it, or already split by a remote
server); `r1chat.core.turn` turns them into the `Event`s below. Front ends import only this
module and `turn`, never llama.cpp.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from r1chat.core import titles


class Channel(Enum):
    """Where a delta's text belongs."""

    RAW = "raw"  # model output with inline <think> tags, to be split
    THINKING = "thinking"  # already known to be reasoning (remote reasoning_content)
    ANSWER = "answer"  # already known to be answer text


@dataclass(frozen=True, slots=True)
class Delta:
    """A piece of generated text from an engine.

    `tokens` counts the tokens it stands for (0 for injected or server text whose
    token count is unknown); `injected` marks text r1chat itself inserted (a budget cut).
    """

    text: str
    tokens: int = 1
    channel: Channel = Channel.RAW
    injected: bool = False


@dataclass(frozen=True, slots=True)
class PromptProgress:
    """Prompt evaluation progress: `done` of `total` prompt tokens evaluated.

    `cached` of them were reused from the previous turn's cache. Engines always send a
    last one with `done == total` before the first delta.
    """

    done: int
    total: int
    cached: int = 0


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ThinkingDone:
    """The reasoning ended: how long it took, how many tokens, and what ended it."""

    seconds: float
    tokens: int
    stopped_by: str | None = None  # None (the model closed it), "budget" or "loop"
    skipped: bool = False  # the reasoning was empty (the model answered directly)

    @property
    def title(self) -> str:
        """`Thought for 14.1s · 402 tokens`, and what cut it, if anything did."""
        if self.skipped:
            return titles.SKIPPED
        return titles.thought(self.seconds, self.tokens, self.stopped_by)


@dataclass(frozen=True, slots=True)
class AnswerDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Notice:
    """A one-line warning for the user (e.g. a loop was cut)."""

    message: str


@dataclass(slots=True)
class Stats:
    """Figures of one reply; field names are those of `--json` output."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    thinking_tokens: int = 0
    answer_tokens: int = 0
    time_to_first_token_s: float = 0.0
    thinking_s: float = 0.0
    total_s: float = 0.0
    tokens_per_s: float = 0.0
    thinking_stopped_by: str | None = None
    turns_left_out: int = 0  # earlier exchanges not sent: over the context (core.overflow)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Done:
    """The reply is over. `finish_reason`: stop, length, loop, cancelled or error."""

    reasoning: str
    content: str
    finish_reason: str
    stats: Stats = field(default_factory=Stats)
    boxed: str | None = None

    @property
    def goes_on(self) -> bool:
        """Whether a conversation that continues re-sends this answer, so an idle-time
        prefill of it pays off: there is one, and the user did not stop it."""
        return bool(self.content) and self.finish_reason != "cancelled"


@dataclass(frozen=True, slots=True)
class EngineCaps:
    """What an engine can do beyond streaming a reply: callers read these, never probe.

    `in_process`: the model runs in this process (llama.cpp): offload, threads and
    repacking mean something, and a crash in it kills the process. `counts`: it counts a
    prompt's tokens exactly (`count_prompt`; context meters, the overflow policy).
    `prefill`: it can read a conversation ahead of the next prompt. `tokens`: it works in
    token ids (`TextEngine`: prompts read ahead, raw completions, dry runs with ids).
    `sequences`: replies it runs at once.
    """

    in_process: bool = False
    counts: bool = False
    prefill: bool = False
    tokens: bool = False
    sequences: int = 1


@dataclass(frozen=True, slots=True)
class EngineInfo:
    """What the status line and `--json` say about the running model."""

    model: str
    backend: str  # "CUDA", "Metal", "Vulkan", "CPU" or "remote"
    n_ctx: int
    trained_ctx: int = 0  # the context the model was trained for (0: unknown)
    gpu_layers: int = 0
    total_layers: int = 0
    threads: int = 0
    kv_type: str = "f16"
    flash_attn: bool = True  # (llama.cpp's default, as r1chat's)
    repack: bool = True  # llama.cpp repacks weights for its CPU kernels (launch.repack)
    notes: tuple[str, ...] = ()  # what the front end tells the user once (a log not written)
    caps: EngineCaps = field(default_factory=EngineCaps)

    @property
    def offload(self) -> str:
        """`CUDA 29/29 layers`, `CPU 8 threads · KV q8_0 · no flash attention`, `remote`
        (the KV cache and flash attention when not llama.cpp's defaults)."""
        if not self.caps.in_process:
            return self.backend
        if self.gpu_layers > 0 and self.backend not in ("CPU",):
            where = f"{self.backend} {self.gpu_layers}/{self.total_layers} layers"
        else:
            where = f"CPU {self.threads} thread{'s' if self.threads != 1 else ''}"
        cache = f" · KV {self.kv_type}" if self.kv_type != "f16" else ""
        return where + cache + ("" if self.flash_attn else " · no flash attention")


Event = PromptProgress | ThinkingDelta | ThinkingDone | AnswerDelta | Notice | Done
