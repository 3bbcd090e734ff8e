"""What a pull reports and what it knows of each remote file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from r1chat.core.errors import R1ChatError


@dataclass(frozen=True, slots=True)
class PullProgress:
    """What a progress callback gets (at most every 0.1 s, and once at each file's end)."""

    name: str  # the model
    file: str  # the file being fetched
    index: int  # 1-based, of `count`
    count: int
    done: int  # bytes on disk for all files
    total: int  # bytes of all files
    resumed: int  # bytes that were already on disk when this pull started
    phase: str  # "download", "verify" or "done"


ProgressFn = Callable[[PullProgress], None]


@dataclass(slots=True)
class RemoteFile:
    """One file as the Hub describes it."""

    repo_path: str
    local: Path
    size: int
    url: str
    etag: str
    commit: str
    sha256: str | None  # what the bytes must hash to
    git_sha1: str | None  # for a non-LFS file: its git blob id
    headers: dict[str, str]

    @property
    def check(self) -> str:
        """How the bytes are verified: "sha256", "git sha1", or only "size"."""
        return "sha256" if self.sha256 else "git sha1" if self.git_sha1 else "size"


class HashMismatch(R1ChatError):
    pass


class PullCancelled(R1ChatError):
    """`cancel` was set: the partial file is kept for the next pull to resume."""

    exit_code = 130
