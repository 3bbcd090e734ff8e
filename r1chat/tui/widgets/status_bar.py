"""The status bar: model, backend and offload, context meter, TTFT and tokens/s."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Static

from r1chat.core.events import EngineInfo, Stats

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def context_meter(used: int | None, n_ctx: int) -> str:
    if used is None:
        return f"ctx –/{n_ctx:,}"
    return f"ctx {used:,}/{n_ctx:,} ({used / max(1, n_ctx):.0%})"


def reply_figures(stats: Stats | None) -> str:
    if stats is None or (stats.thinking_tokens + stats.answer_tokens) == 0:
        return ""
    return f"TTFT {stats.time_to_first_token_s:.2f}s · {stats.tokens_per_s:.1f} tok/s"


class StatusBar(Horizontal):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._left = Static("", id="status-model")
        self._right = Static("", id="status-figures")

    def compose(self) -> ComposeResult:
        yield self._left
        yield self._right

    def show_loading(self, model: str, seconds: float) -> None:
        spin = SPINNER[int(seconds * 10) % len(SPINNER)]
        self._left.update(Content(f"{spin} Loading {model}… {seconds:.0f}s"))
        self._right.update("")
        self.set_class(True, "-loading")
        self.set_class(False, "-error")

    def show_error(self, text: str) -> None:
        self._left.update(Content(f"✖ {text}"))
        self._right.update("")
        self.set_class(False, "-loading")
        self.set_class(True, "-error")

    def show_ready(
        self, info: EngineInfo, used: int | None, stats: Stats | None, note: str = ""
    ) -> None:
        self.set_class(False, "-loading")
        self.set_class(False, "-error")
        self._left.update(Content(f"{info.model} · {info.offload}"))
        parts = [note] if note else []
        parts.append(context_meter(used, info.n_ctx))
        if figures := reply_figures(stats):
            parts.append(figures)
        self._right.update(Content(" │ ".join(parts)))

    @property
    def text(self) -> str:
        return f"{self._left.content} {self._right.content}"
