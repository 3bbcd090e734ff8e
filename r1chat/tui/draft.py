"""A prompt typed and not sent is never thrown away: a new chat (ctrl+n) keeps it in the
input, and quitting (or the terminal closing) keeps it in `draft.txt` in the data folder,
which the next chat puts back in the input. The file goes once the prompt is sent, or
the chat quits with an empty input: a chat killed before either finds it again."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from r1chat.config import paths


def draft_path() -> Path:
    return paths.data_dir() / "draft.txt"


def keep(text: str) -> str | None:
    """Save `text` for the next chat (nothing to save: forget an older one); why not, if
    it could not be saved."""
    path = draft_path()
    if not text.strip():
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".draft-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError, UnboundLocalError):
            Path(tmp).unlink(missing_ok=True)
        return f"your unsent draft could not be kept ({e.strerror})"
    return None


def kept() -> str:
    """The draft the last chat left, or "" (it stays until `keep` replaces or forgets it)."""
    try:
        return draft_path().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""
