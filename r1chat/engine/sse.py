"""An incremental Server-Sent Events decoder, fed with raw bytes as they arrive.

It implements what OpenAI-compatible servers use of the SSE format (`data:` lines,
multi-line data, `event:` names, `:` comments and keep-alives, LF, CRLF or CR line
ends) with one pass over each network chunk, and it remembers the first line that is not
SSE at all, so a caller can tell "not an event stream" from "an empty one".
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_LINE = 4 * 1024 * 1024
"""A line longer than this (bytes) without a line end is not an event stream."""

_FIELDS = (b"data", b"event", b"id", b"retry")


class SSEError(ValueError):
    """The bytes are not a usable event stream."""


@dataclass(frozen=True, slots=True)
class Event:
    data: str
    event: str = "message"


class SSEDecoder:
    """`feed(chunk)` returns the events completed by `chunk`; `finish()` flushes the rest."""

    __slots__ = ("_buf", "_data", "_event", "junk", "lines")

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[bytes] = []
        self._event = b""
        self.junk: bytes | None = None
        """The first line that is no SSE field (for error messages), if any."""
        self.lines = 0
        """How many lines were read (0: nothing that looks like a line arrived)."""

    def feed(self, chunk: bytes) -> list[Event]:
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            # CRLF or bare CR line ends; a CR at the very end may be the first half of CRLF.
            hold_cr = buf.endswith(b"\r")
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if hold_cr:
                buf = buf[:-1]
            lines = buf.split(b"\n")
            self._buf = lines.pop() + (b"\r" if hold_cr else b"")
        else:
            lines = buf.split(b"\n")
            self._buf = lines.pop()
        if len(self._buf) > MAX_LINE:
            raise SSEError(f"a line of more than {MAX_LINE} bytes without a line end")
        return self._lines(lines) if lines else []

    def finish(self) -> list[Event]:
        """The events still pending when the stream ends (a last event needs no blank line)."""
        rest, self._buf = self._buf.rstrip(b"\r"), b""
        lines = [rest] if rest else []
        return self._lines([*lines, b""])

    def _lines(self, lines: list[bytes]) -> list[Event]:
        out: list[Event] = []
        data = self._data
        self.lines += len(lines)
        for line in lines:
            if line[:5] == b"data:":
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif not line:
                if data:
                    text = b"\n".join(data).decode("utf-8", errors="replace")
                    name = self._event.decode("utf-8", errors="replace") or "message"
                    out.append(Event(text, name))
                    data.clear()
                self._event = b""
            elif line[:1] == b":":
                continue
            else:
                field, _, value = line.partition(b":")
                if field == b"event":
                    self._event = value[1:] if value[:1] == b" " else value
                elif field not in _FIELDS and self.junk is None:
                    self.junk = line[:200]
        return out
