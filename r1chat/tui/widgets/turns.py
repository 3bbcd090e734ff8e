"""A prompt and a reply in the transcript.

`AssistantTurn` renders one reply: the reasoning pane beside (or above) the answer pane.
A live turn takes batched generation items through `apply` and `tick` (the title's timer);
a stored turn is built finished, from History.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from textual.app import ComposeResult
from textual.containers import Container
from textual.content import Content
from textual.widgets import Static

from r1chat.core.attachments import File, split
from r1chat.core.events import AnswerDelta, Done, Notice, PromptProgress, ThinkingDone
from r1chat.core.printable import printable
from r1chat.core.titles import ending
from r1chat.host.outcomes import AnswerChunk, Failed, Item, ThinkingChunk
from r1chat.tui import pane_titles
from r1chat.tui.widgets.answer_pane import AnswerPane, versions_mark
from r1chat.tui.widgets.reasoning_pane import ReasoningPane

_KINDS = {"cancelled": "stopped", "length": "warning", "loop": "warning", "error": "error"}
FINISH_NOTES = {reason: (f"■ {ending(reason)}", kind) for reason, kind in _KINDS.items()}

SAID_BY_NOTICE = ("length", "loop")
"""Finishes whose live turn has a notice saying the same (`core.turn` writes it); a reply
reopened from History has only the note."""


class UserMessage(Static, can_focus=True):
    """The user's prompt, shown as typed (no markup), its attached files as a line of
    chips, `‹ 2/3 ›` when it was edited; `left_out` marks one the model no longer sees
    (the conversation outgrew the context). Focused (alt+up), it can be edited (the
    keys of a focused turn are the chat screen's)."""

    NOT_SENT = "not sent: over the context"

    def __init__(self, text: str, version: tuple[int, int] = (1, 1)) -> None:
        sent = split(text)
        chips = [("attached ", "dim"), *_chips(sent.files)] if sent.files else []
        lines = [Content(printable(sent.prompt))] if sent.prompt else []
        if chips:
            lines.append(Content.assemble(*chips))
        if version[1] > 1:
            lines.append(Content.styled(versions_mark(version), "dim"))
        super().__init__(Content("\n").join(lines), classes="user-message")
        self.text = text
        self._left_out = False

    @property
    def left_out(self) -> bool:
        return self._left_out

    @left_out.setter
    def left_out(self, value: bool) -> None:
        if value == self._left_out:
            return
        self._left_out = value
        self.set_class(value, "-left-out")
        self.border_title = self.NOT_SENT if value else None


def _chips(files: tuple[File, ...]) -> list[tuple[str, str] | str]:
    out: list[tuple[str, str] | str] = []
    for f in files:
        lines = f.text.count("\n")
        size = f" {lines:,} line{'s' if lines != 1 else ''}  "
        out += [(f" {printable(f.name)} ", "reverse"), (size, "dim")]
    return out


class AssistantTurn(Container, can_focus=True):
    """A reply. Focused (alt+up), it can be regenerated or switched to another version."""

    def __init__(
        self,
        *,
        reasoning_title: str = pane_titles.WAITING,
        reasoning: str = "",
        answer: str = "",
        collapsed: bool = False,
        empty_reasoning: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.reasoning = ReasoningPane(
            reasoning_title, reasoning, collapsed=collapsed, empty=empty_reasoning
        )
        self.answer = AnswerPane(answer)
        self._clock = clock
        self.live = False
        self.think = True
        self._thinking_tokens = 0
        self._thinking_since: float | None = None
        self._thinking_over = False
        self._thinking_done: ThinkingDone | None = None
        self.finish_reason: str | None = None
        self.done: Done | None = None
        self._restack()

    @classmethod
    def stored(
        cls,
        *,
        reasoning: str,
        answer: str,
        stats: dict[str, Any] | None,
        finish_reason: str | None,
        collapsed: bool,
        version: tuple[int, int] = (1, 1),
    ) -> AssistantTurn:
        """A finished reply loaded from History, titled and marked as it ended."""
        turn = cls(
            reasoning_title=pane_titles.stored(reasoning, stats, finish_reason),
            reasoning=reasoning,
            answer=answer,
            collapsed=collapsed,
            empty_reasoning=not reasoning,
        )
        turn.answer.set_version(version)
        if stats is None:
            turn.answer.set_status("■ Interrupted (r1chat was closed mid-reply)", "stopped")
        else:
            turn.answer.set_status(*FINISH_NOTES.get(finish_reason or "", ("", "info")))
        return turn

    def compose(self) -> ComposeResult:
        yield self.reasoning
        yield self.answer

    # -- layout -----------------------------------------------------------------------

    def _restack(self) -> None:
        """Side by side only when there is reasoning to show beside the answer."""
        self.set_class(self.reasoning.collapsed or self.reasoning.empty, "-stack")

    def on_reasoning_pane_toggled(self, event: ReasoningPane.Toggled) -> None:
        self._restack()

    def set_collapsed(self, collapsed: bool) -> None:
        self.reasoning.collapsed = collapsed
        self._restack()

    # -- streaming --------------------------------------------------------------------

    def start(self, *, think: bool, waiting: str = "") -> None:
        """Become the live turn of a new reply."""
        self.live = True
        self.think = think
        self.reasoning.set_class(think, "-streaming")  # the trace may use the screen's height
        if not think:
            self.reasoning.set_title(pane_titles.NO_THINK, empty=True)
            self._thinking_over = True
        self.answer.set_status(waiting or "Waiting for the model…", "info")
        self._restack()

    async def apply(self, item: Item) -> None:
        """Show one batched generation item."""
        if isinstance(item, ThinkingChunk):
            if self._thinking_since is None:
                self._thinking_since = self._clock()
                self.answer.set_status("The answer comes when the reasoning ends…", "info")
            self._thinking_tokens += item.count
            self.reasoning.append(item.text)
        elif isinstance(item, (AnswerChunk, AnswerDelta)):
            if not self.answer.has_text:
                self.answer.set_status("", "info")
            self.answer.write(item.text)
        elif isinstance(item, ThinkingDone):
            self._thinking_over = True
            self._thinking_done = item
            self.reasoning.remove_class("-streaming")
            self.reasoning.set_title(pane_titles.final(item, think=self.think), empty=item.skipped)
            self._restack()
        elif isinstance(item, PromptProgress):
            if item.done < item.total and item.total - item.cached > 256:
                share = (item.done - item.cached) / max(1, item.total - item.cached)
                self.answer.set_status(
                    f"Reading the prompt… {item.done:,}/{item.total:,} tokens ({share:.0%})"
                )
            elif self._thinking_since is None:
                self.answer.set_status("")
        elif isinstance(item, Notice):
            self.answer.add_notice(item.message)
        elif isinstance(item, Done):
            await self.finish(item)
        elif isinstance(item, Failed):
            await self.fail(item.message)

    def tick(self) -> None:
        """Refresh the live title (`Thinking… 12.4s · 318 tokens`)."""
        if self.live and not self._thinking_over and self._thinking_since is not None:
            seconds = self._clock() - self._thinking_since
            self.reasoning.set_title(pane_titles.live(seconds, self._thinking_tokens))

    async def finish(self, done: Done) -> None:
        self.live = False
        self.reasoning.remove_class("-streaming")
        self.done = done
        self.finish_reason = done.finish_reason
        shown = self.answer.text
        if len(done.content) > len(shown) and done.content.startswith(shown):
            self.answer.write(done.content[len(shown) :])  # text held back as a possible call
        self.answer.finish()
        thinking = self._thinking_done
        counted = done.stats.thinking_tokens  # a server's usage may count more than its deltas
        if thinking is not None and not thinking.skipped and counted != thinking.tokens:
            thinking = replace(thinking, tokens=counted)
            self.reasoning.set_title(pane_titles.final(thinking, think=self.think))
        stopped = done.finish_reason == "cancelled" and not done.content
        if thinking is not None and not thinking.skipped and stopped:
            self.reasoning.set_title(pane_titles.final(thinking, stopped=True))
        elif thinking is None:
            self.reasoning.set_title("No reasoning", empty=True)
        self.answer.show_boxed(done.boxed)
        note, kind = FINISH_NOTES.get(done.finish_reason, ("", "info"))
        if done.finish_reason in SAID_BY_NOTICE and self.answer.has_notices:
            note = ""  # the notice above says what ended it (and what to do): not twice
        self.answer.set_status(note, kind)
        self._restack()

    async def fail(self, message: str) -> None:
        self.live = False
        self.reasoning.remove_class("-streaming")
        self.finish_reason = "failed"
        self.answer.finish()
        if self._thinking_since is None:  # it never started: no pane to speak of
            self.reasoning.display = False
        elif not self._thinking_over:  # it broke mid-thought: the live title must not stay
            seconds = self._clock() - self._thinking_since
            self.reasoning.set_title(pane_titles.broken(seconds, self._thinking_tokens))
        self.answer.set_status(f"✖ {message}", "error")
        self._restack()
