"""Why a file cannot be written, in words: the file system is read-only, the disk is full,
the folder is not ours to write. One wording for every file r1chat keeps (history,
config, indexes), so a failed write always names the file and the reason."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path

FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
READ_ONLY_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM)


def problem(path: Path, error: OSError | None = None) -> str | None:
    """Why `path` (or a new file beside it) cannot be written, if the folder says so: its
    file system is read-only, the disk is full, or it is not writable; else `error`'s."""
    folder = path if path.is_dir() else path.parent
    with contextlib.suppress(OSError, AttributeError):
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "the file system is read-only"
    with contextlib.suppress(OSError):
        if (free := shutil.disk_usage(folder).free) < 1 << 16:
            return f"the disk is full ({free:,} bytes free)"
    if error is not None:
        if error.errno in FULL_ERRNOS:
            return "the disk is full"
        if error.errno == errno.EROFS:
            return "the file system is read-only"
        if error.errno in (errno.EACCES, errno.EPERM):
            return "permission denied"
        return error.strerror or str(error)
    if not os.access(folder, os.W_OK):
        return "the folder is not writable"
    return None
