"""The status bar: model, backend and offload, context meter, TTFT and tokens/s."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Static

from r1chat.core.events import EngineInfo, Stats
from r1chat.core.printable import one_line
from r1chat.session.chat import ChatSession

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def context_meter(used: int | None, n_ctx: int) -> str:
    if used is None:
        return f"ctx –/{n_ctx:,}"
    return f"ctx {used:,}/{n_ctx:,} ({used / max(1, n_ctx):.0%})"


def reply_figures(stats: Stats | None, *, short: bool = False) -> str:
    if stats is None or (stats.thinking_tokens + stats.answer_tokens) == 0:
        return ""
    if short:
        return f"{stats.tokens_per_s:,.0f} tok/s"
    return f"TTFT {stats.time_to_first_token_s:.2f}s · {stats.tokens_per_s:,.1f} tok/s"


def fit_line(model: str, offload: str, right: list[list[str]], width: int) -> tuple[str, str]:
    """The left (`model · offload`) and right parts for `width` columns. `right` holds the
    right part's pieces, most important first, each as its forms from longest to shortest
    ("" to leave it out). To fit: shorter forms (the last piece first), then an ellipsis
    in the model name (down to 20 columns), then pieces left out; never the offload."""
    forms = [0] * len(right)

    def joined() -> str:
        return " │ ".join(p[i] for p, i in zip(right, forms, strict=True) if p[i])

    def over(name: str) -> bool:
        return len(f"{name} · {offload}") + 2 + len(joined()) > width

    def shrink(allow_empty: bool) -> None:
        for k in reversed(range(len(right))):
            while over(model) and forms[k] + 1 < len(right[k]):
                if not right[k][forms[k] + 1] and not allow_empty:
                    break
                forms[k] += 1

    shrink(allow_empty=False)
    room = width - 2 - len(joined()) - len(f" · {offload}")
    if len(model) > room:
        model = model[: max(20, room) - 1] + "…"
    shrink(allow_empty=True)
    return f"{model} · {offload}", joined()


class StatusBar(Horizontal):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._left = Static("", id="status-model")
        self._right = Static("", id="status-figures")
        self._ready: tuple[EngineInfo, int | None, Stats | None, str, int | None] | None = None
        self._shown: tuple[object, ...] | None = None  # the session's state shown now

    def compose(self) -> ComposeResult:
        yield self._left
        yield self._right

    def show_session(self, s: ChatSession, now: float) -> None:
        """Show the chat session's model, context and last reply (redrawn only when they
        changed), or its load."""
        if s.loading_since is not None:
            self._shown = None
            self.show_loading(s.settings.model or "", now - s.loading_since)
            return
        shown = (s.info, s.context_used, s.last_stats, s.left_out, s.load_error, s.draft_used)
        if shown == self._shown:
            return
        self._shown = shown
        if s.info is not None:
            n = s.left_out
            note = f"{n} earlier turn{'s' if n != 1 else ''} not sent" if n else ""
            self.show_ready(s.info, s.context_used, s.last_stats, note, s.draft_used)
        elif s.load_error is not None:
            self.show_error("no model loaded: ctrl+o pulls, imports or picks one")

    def show_loading(self, model: str, seconds: float) -> None:
        spin = SPINNER[int(seconds * 10) % len(SPINNER)]
        self._left.update(Content(f"{spin} Loading {one_line(model)}… {seconds:.0f}s"))
        self._right.update("")
        self.set_class(True, "-loading")
        self.set_class(False, "-error")

    def show_error(self, text: str) -> None:
        self._left.update(Content(f"✖ {text}"))
        self._right.update("")
        self.set_class(False, "-loading")
        self.set_class(True, "-error")

    def show_ready(
        self,
        info: EngineInfo,
        used: int | None,
        stats: Stats | None,
        note: str = "",
        draft: int | None = None,
    ) -> None:
        """`draft`: the context the next prompt fills with the draft's attached files."""
        self.set_class(False, "-loading")
        self.set_class(False, "-error")
        self._ready = (info, used, stats, note, draft)
        pieces = [[note, ""]] if note else []
        if draft is not None:
            meter = context_meter(draft, info.n_ctx)
            pieces.append([f"{meter} with @files", f"ctx {draft:,}/{info.n_ctx:,} @files"])
        else:
            pieces.append([context_meter(used, info.n_ctx), f"ctx {used or 0:,}/{info.n_ctx:,}"])
        pieces.append([reply_figures(stats), reply_figures(stats, short=True), ""])
        left, right = fit_line(one_line(info.model), info.offload, pieces, self.size.width or 160)
        self._left.update(Content(left))
        self._right.update(Content(right))

    def on_resize(self) -> None:
        if self._ready is not None and not self.has_class("-loading", "-error"):
            self.show_ready(*self._ready)

    @property
    def text(self) -> str:
        return f"{self._left.content} {self._right.content}"
