"""Text from model files and models, made safe to show on a terminal.

A GGUF's name, a chat template, a file name, a reasoning trace or an answer may hold
terminal control sequences (`\\x1b]0;title\\a` sets the window title, `\\x1b[2J` clears
the screen, OSC 52 writes the clipboard). Everything r1chat draws or prints on a terminal
from such sources goes through `printable` (text) or `one_line` (a name, a title, a path);
a pipe gets an answer exactly as the model wrote it.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, clearing
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window titles, hyperlinks, the clipboard
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM and APC strings
    r"|\x1b.?"  # any other escape
    r"|\x9b[0-?]*[ -/]*[@-~]"  # the 8-bit CSI
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"  # every other C0 and C1 control (tab and newline stay)
)
_LINE = re.compile(r"[\t\n\u2028\u2029]+")
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")  # direction overrides: names that lie


def printable(text: str) -> str:
    """`text` without terminal control sequences (newlines and tabs kept)."""
    return _CONTROL.sub("", text) if _CONTROL.search(text) else text


def one_line(text: str) -> str:
    """`printable` for a name, a title or a path: on one line, in its written direction."""
    return _BIDI.sub("", _LINE.sub(" ", printable(text)))
