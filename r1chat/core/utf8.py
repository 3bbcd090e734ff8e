"""Bytes that must be UTF-8 text (a config file, a file for the prompt, stdin), decoded
with one line saying where they are not."""

from __future__ import annotations

from r1chat.core.errors import UsageError


def decode(data: bytes, what: str) -> str:
    """`data` as text; UsageError naming `what` and the first bad byte's offset."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        bad = data[e.start : e.start + 1].hex()
        raise UsageError(f"{what} is not UTF-8 text (byte 0x{bad} at offset {e.start:,})") from None
