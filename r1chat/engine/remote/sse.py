"""An incremental Server-Sent Events decoder, fed with raw bytes as they arrive.

It implements what OpenAI-compatible servers use of the SSE format (`data:` lines,
multi-line data, `event:` names, `:` comments and keep-alives, LF, CRLF or CR line
ends), and it remembers the first line that is not SSE at all, so a caller can tell
"not an event stream" from "an empty one". Events come out as `(name, data)` tuples with
the data as bytes (what `json.loads` takes); the common one-line `data: ...` event is
taken whole, without a pass over its lines, so a burst of thousands of events costs
little more than splitting the bytes.
"""

from __future__ import annotations

MAX_LINE = 4 * 1024 * 1024
"""A line longer than this (bytes) without a line end is not an event stream."""

_FIELDS = (b"data", b"event", b"id", b"retry")
MESSAGE = "message"

Event = tuple[str, bytes]  # (event name, data)


class SSEError(ValueError):
    """The bytes are not a usable event stream."""


class SSEDecoder:
    """`feed(chunk)` returns the events completed by `chunk`; `finish()` flushes the rest."""

    __slots__ = ("_buf", "_data", "_event", "junk", "lines")

    def __init__(self) -> None:
        self._buf = b""  # an unfinished line
        self._data: list[bytes] = []  # data lines of the event being read
        self._event = b""
        self.junk: bytes | None = None
        """The first line that is no SSE field (for error messages), if any."""
        self.lines = 0
        """Whether (nonzero) any complete line arrived."""

    def feed(self, chunk: bytes) -> list[Event]:
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            # CRLF or bare CR line ends; a CR at the very end may be the first half of CRLF.
            hold_cr = buf.endswith(b"\r")
            if hold_cr:
                buf = buf[:-1]
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if hold_cr:
                buf += b"\r"
        cut = buf.rfind(b"\n") + 1
        self._buf = buf[cut:]
        if len(self._buf) > MAX_LINE:
            raise SSEError(f"a line of more than {MAX_LINE} bytes without a line end")
        if not cut:
            return []
        self.lines += 1
        return self._text(buf[:cut])

    def finish(self) -> list[Event]:
        """The events still pending when the stream ends (a last event needs no blank line)."""
        rest, self._buf = self._buf.rstrip(b"\r"), b""
        out = self._lines([rest]) if rest else []
        return out + self._lines([b""])

    def _text(self, text: bytes) -> list[Event]:
        """Complete lines (`text` ends with a line end)."""
        blocks = text.split(b"\n\n")
        tail = blocks.pop()  # after the last blank line: lines of an event still open
        out: list[Event] = []
        slow = bool(self._data or self._event)  # an event began in an earlier chunk
        for block in blocks:
            if not slow and block[:6] == b"data: " and b"\n" not in block:
                out.append((MESSAGE, block[6:]))
            else:
                out += self._lines([*block.split(b"\n"), b""])
                slow = False
        if tail:
            out += self._lines(tail[:-1].split(b"\n") if tail.endswith(b"\n") else [tail])
        return out

    def _lines(self, lines: list[bytes]) -> list[Event]:
        out: list[Event] = []
        data = self._data
        for line in lines:
            if line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif not line:
                if data:
                    name = self._event.decode("utf-8", errors="replace") or MESSAGE
                    out.append((name, b"\n".join(data)))
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
