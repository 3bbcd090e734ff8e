"""How `r1chat ask` writes a reply: plain text for pipes, styled for a terminal, or JSON."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from r1chat.core import r1
from r1chat.core.errors import UsageError
from r1chat.core.events import AnswerDelta, Done, Event, Notice, ThinkingDelta, ThinkingDone
from r1chat.core.printable import printable

DIM, RESET = "\x1b[2m", "\x1b[0m"
_FLUSH_EVERY = 0.05  # seconds: stream to the reader without a syscall per token


class _Writer:
    """Writes to a stream, flushing at most every 50 ms."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._last = time.monotonic()
        self.ends_with_newline = True

    def write(self, text: str) -> None:
        if not text:
            return
        self.stream.write(text)
        self.ends_with_newline = text.endswith("\n")
        now = time.monotonic()
        if now - self._last > _FLUSH_EVERY:
            self.stream.flush()
            self._last = now

    def flush(self) -> None:
        self.stream.flush()


class PlainOutput:
    """The answer on stdout exactly as written; reasoning per `thinking` mode.

    thinking: "hide"; "stderr" (reasoning on stderr); "show" (reasoning on stdout,
    inside <think></think>, before the answer).
    """

    def __init__(self, thinking: str, stdout: TextIO, stderr: TextIO) -> None:
        self.thinking = thinking
        self.out = _Writer(stdout)
        self.err = _Writer(stderr)
        self._think = {"show": self.out, "stderr": self.err}.get(thinking)
        self._opened = False
        # the reasoning on a terminal's stderr: what a model wrote, never a control sequence
        self._shown = printable if thinking == "stderr" and stderr.isatty() else str

    def event(self, e: Event) -> None:
        if type(e) is AnswerDelta:
            self.out.write(e.text)
        elif type(e) is ThinkingDelta and self._think is not None:
            if not self._opened and self.thinking == "show":
                self._think.write(r1.OPEN_REASONING)
            self._opened = True
            self._think.write(self._shown(e.text))
        elif type(e) is ThinkingDone and self._opened:
            self._think.write(r1.EMPTY_REASONING if self.thinking == "show" else "\n\n")  # type: ignore[union-attr]
            self.err.flush()
        elif type(e) is Notice:
            self.out.flush()
            self.err.write(f"warning: {printable(e.message)}\n")
            self.err.flush()

    def finish(self, done: Done, model: str) -> None:
        if done.content and not self.out.ends_with_newline:
            self.out.write("\n")
        self.out.flush()
        self.err.flush()


class TerminalOutput:
    """For a person at a terminal: dimmed reasoning, then the answer as Markdown (what the
    model wrote, without terminal control sequences)."""

    def __init__(self, thinking: str, stdout: TextIO, stderr: TextIO) -> None:
        from rich.console import Console

        self.color = not os.environ.get("NO_COLOR")
        self.console = Console(file=stdout, highlight=False)
        self.think_stream = {"show": stdout, "auto": stdout, "stderr": stderr}.get(thinking)
        self.stderr = stderr
        self._thinking_open = False
        self._markdown = _MarkdownBlocks(self.console)
        self._wrap = _WordWrap(self.console.width)
        self._answering = False
        self._later: list[str] = []  # notices that come while the answer is being drawn

    def _dim(self, text: str) -> str:
        return f"{DIM}{text}{RESET}" if self.color else text

    def event(self, e: Event) -> None:
        out = self.think_stream
        if type(e) is AnswerDelta:
            self._answering = True
            self._markdown.feed(printable(e.text))
        elif type(e) is ThinkingDelta and out is not None:
            if not self._thinking_open:
                out.write(self._dim("Thinking…\n"))
                self._thinking_open = True
            out.write(self._dim(self._wrap(printable(e.text))))
            out.flush()
        elif type(e) is ThinkingDone and out is not None:
            gap = "\n" if self._thinking_open else ""
            out.write(gap + self._dim(f"── {e.title} ──") + "\n\n")
            out.flush()
        elif type(e) is Notice:
            if self._answering:  # after the answer's last Markdown block, not inside it
                self._later.append(printable(e.message))
                return
            if self._thinking_open and out is not None and self._wrap.column:
                out.write("\n")  # on a line of its own, not after half a line of reasoning
                out.flush()
                self._wrap.column = 0
            self.stderr.write(f"warning: {printable(e.message)}\n")

    def finish(self, done: Done, model: str) -> None:
        from rich.markup import escape

        self._markdown.close()
        if done.boxed is not None:
            boxed = escape(printable(done.boxed))
            self.console.print(f"[bold]Final answer:[/bold] [reverse] {boxed} [/reverse]")
        self.console.file.flush()
        for message in self._later:
            self.stderr.write(f"warning: {message}\n")


class _WordWrap:
    """Break streamed text at spaces before the terminal breaks it inside a word."""

    def __init__(self, width: int) -> None:
        self.width = max(20, width)
        self.column = 0

    def __call__(self, text: str) -> str:
        out: list[str] = []
        for part in re.split(r"(\s+)", text):
            if "\n" in part:
                self.column = len(part) - part.rfind("\n") - 1
            elif part.isspace() and self.column + len(part) >= self.width:
                part, self.column = "\n", 0
            elif self.column and self.column + len(part) > self.width:
                out.append("\n")
                self.column = len(part)
            else:
                self.column += len(part)
            out.append(part)
        return "".join(out)


class _MarkdownBlocks:
    """Render streamed Markdown block by block (a block ends at a blank line outside code)."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self.pending = ""

    def feed(self, text: str) -> None:
        self.pending += text
        cut = self._last_block_end(self.pending)
        if cut:
            self._print(self.pending[:cut])
            self.pending = self.pending[cut:]

    @staticmethod
    def _last_block_end(text: str) -> int:
        end, fenced, pos = 0, False, 0
        for line in text.splitlines(keepends=True):
            pos += len(line)
            if line.lstrip().startswith("```"):
                fenced = not fenced
            elif not fenced and not line.strip() and line.endswith("\n"):
                end = pos
        return end

    def _print(self, block: str) -> None:
        from rich.markdown import Markdown

        if block.strip():
            self.console.print(Markdown(block))

    def close(self) -> None:
        self._print(self.pending)
        self.pending = ""


def done_fields(
    done: Done, model: str, notices: list[str], structured: bool = False
) -> dict[str, Any]:
    """The fields of `--json` (and of `--jsonl`'s last line): DeepSeek API names, and the
    reply's notices (what cut it, what the guards did) as the `warning:` lines say them;
    `structured` (`--schema`): the answer as the JSON value it is (text if it was cut)."""
    content: Any = done.content
    if structured:
        with contextlib.suppress(ValueError):
            content = json.loads(done.content)
    return {
        "model": model,
        "reasoning_content": done.reasoning,
        "content": content,
        "finish_reason": done.finish_reason,
        "boxed": done.boxed,
        "notices": notices,
        "stats": done.stats.to_dict(),
    }


class JsonOutput:
    """One JSON object at the end, with DeepSeek API field names."""

    def __init__(self, stdout: TextIO, stderr: TextIO, structured: bool = False) -> None:
        self.stdout, self.stderr, self.structured = stdout, stderr, structured
        self.notices: list[str] = []

    def event(self, e: Event) -> None:
        if type(e) is Notice:
            self.notices.append(e.message)
            self.stderr.write(f"warning: {printable(e.message)}\n")

    def finish(self, done: Done, model: str) -> None:
        fields = done_fields(done, model, self.notices, self.structured)
        json.dump(fields, self.stdout, ensure_ascii=False)
        self.stdout.write("\n")
        self.stdout.flush()


class JsonlOutput:
    """One JSON object per event as it happens, flushed, for editors and scripts:
    `reasoning` and `answer` (text), `reasoning_done`, `notice`, and a last `done`
    with the fields of `--json`."""

    def __init__(self, stdout: TextIO, structured: bool = False) -> None:
        self.stdout, self.structured = stdout, structured
        self.notices: list[str] = []

    def _line(self, obj: dict[str, Any]) -> None:
        self.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self.stdout.flush()

    def event(self, e: Event) -> None:
        kind = type(e)
        if kind is ThinkingDelta:
            self._line({"type": "reasoning", "text": e.text})  # type: ignore[union-attr]
        elif kind is AnswerDelta:
            self._line({"type": "answer", "text": e.text})  # type: ignore[union-attr]
        elif kind is ThinkingDone:
            assert isinstance(e, ThinkingDone)
            self._line(
                {
                    "type": "reasoning_done",
                    "seconds": round(e.seconds, 3),
                    "tokens": e.tokens,
                    "stopped_by": e.stopped_by,
                }
            )
        elif kind is Notice:
            assert isinstance(e, Notice)
            self.notices.append(e.message)
            self._line({"type": "notice", "message": e.message})

    def finish(self, done: Done, model: str) -> None:
        self._line({"type": "done", **done_fields(done, model, self.notices, self.structured)})


class ReasoningFile:
    """`--thinking-file PATH`: the reasoning written to PATH as it streams. A write that
    fails (a full disk) is one warning, and the answer goes on."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.file: TextIO | None = open(path, "w", encoding="utf-8")  # noqa: SIM115
        except OSError as e:
            raise UsageError(f"--thinking-file {path}: cannot write it ({e.strerror})") from None

    def _do(self, action: Callable[[TextIO], object]) -> None:
        if self.file is None:
            return
        try:
            action(self.file)
        except OSError as e:
            print(
                f"warning: --thinking-file {self.path}: cannot write it ({e.strerror}); "
                "the reasoning is not saved there",
                file=sys.stderr,
            )
            with contextlib.suppress(OSError):
                self.file.close()
            self.file = None

    def event(self, e: Event) -> None:
        if type(e) is ThinkingDelta:
            self._do(lambda f: f.write(e.text))
        elif type(e) is ThinkingDone:
            self._do(lambda f: f.flush())

    def finish(self, done: Done, model: str) -> None:
        if done.reasoning:
            self._do(lambda f: f.write("\n"))
        self._do(lambda f: f.close())


Output = PlainOutput | TerminalOutput | JsonOutput | JsonlOutput


def choose_output(
    thinking: str, as_json: bool, as_jsonl: bool = False, structured: bool = False
) -> Output:
    if as_jsonl:
        return JsonlOutput(sys.stdout, structured)
    if as_json:
        return JsonOutput(sys.stdout, sys.stderr, structured)
    if sys.stdout.isatty():
        return TerminalOutput(thinking, sys.stdout, sys.stderr)
    mode = "hide" if thinking == "auto" else thinking
    return PlainOutput(mode, sys.stdout, sys.stderr)
