"""`models pull`: download a catalog model's files from the Hugging Face Hub, resumably.

How it combines huggingface_hub with its own transfer:

- huggingface_hub does everything that is about the Hub: the file URL (`hf_hub_url`,
  which honours HF_ENDPOINT), the HEAD request that yields size, LFS sha256 (the
  `X-Linked-Etag`), commit and CDN location (`get_hf_file_metadata`), authentication
  (`build_hf_headers`: HF_TOKEN or the stored login), offline mode (HF_HUB_OFFLINE),
  and its error types (gated, not found, ...), which become one-line messages here.
- The bytes come through our own loop, because `hf_hub_download` keeps its partial file
  in its cache and only resumes within one process: we keep `<file>.part` next to the
  destination and ask for `Range: bytes=N-`, so a pull resumes after Ctrl-C, a dropped
  connection or `kill -9`, re-fetching at most the one buffer that was not yet written.
  The GET goes through the standard library's http.client (with httpx2's SSL context,
  the one huggingface_hub's client uses) reading straight into reused 1 MiB buffers:
  on a loopback link that keeps up with curl, where huggingface_hub's httpx client
  (several copies of every byte in Python) reaches about 60% of it. When a proxy is
  configured (HTTPS_PROXY and friends) the GET goes through huggingface_hub's client
  (`get_session()`), which knows proxies.
- `<file>.part.json` records which remote object (etag, size) the partial bytes belong
  to: if the file changed upstream, the stale partial is discarded, not spliced.
- sha256 is computed while downloading, in a second thread that is handed each buffer
  after it is written (on resume it first re-reads the bytes already on disk). The
  digest is checked against the catalog's sha256, else the Hub's LFS sha256; only a
  verified file is renamed to its final name (atomically). A mismatch deletes that
  `.part` and says which file and both hashes; files already verified are kept.
- Free disk space is checked before the first byte; a lock file (flock) keeps a second
  pull of the same file out; a dropped connection is retried from where it stopped.
- The data is not fsynced before the rename (nor by hf_hub_download or curl): on a fast
  link that costs a quarter of the throughput. A process crash loses nothing (the bytes
  are in the page cache); after a power cut a file may come back short, which the GGUF
  header check catches: `pull` fetches such a file again and loading it says so.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from r1chat.core.errors import R1ChatError
from r1chat.core.units import human
from r1chat.models import store
from r1chat.models.download.hub import offline_error, resolve_remote
from r1chat.models.download.transfer import RETRIES, Tracker, download_file, intact, valid_part
from r1chat.models.download.types import (
    HashMismatch,
    ProgressFn,
    PullCancelled,
    PullProgress,
    RemoteFile,
)

if TYPE_CHECKING:
    from r1chat.models.catalog import Entry

__all__ = ["RETRIES", "HashMismatch", "PullCancelled", "PullProgress", "PullResult", "pull"]

SPACE_MARGIN = 64 << 20  # keep this much free beyond the download


@dataclass(frozen=True, slots=True)
class PullResult:
    entry: Entry
    paths: tuple[Path, ...]
    downloaded: int  # bytes fetched by this pull
    resumed: int  # bytes that were on disk already
    seconds: float  # the whole pull, Hub requests included
    already: bool  # everything was installed before
    transfer_seconds: float = 0.0  # first byte requested to last file verified and in place
    checks: tuple[str, ...] = ()  # how each fetched file was verified ("sha256", ...)


def pull(
    entry: Entry,
    *,
    progress: ProgressFn | None = None,
    retries: int = RETRIES,
    cancel: threading.Event | None = None,
) -> PullResult:
    """Download, verify and install `entry`'s files (resuming any partial ones).

    Blocking; a UI runs it in a worker thread, shows `progress` (called from that
    thread) and sets `cancel` to stop it (PullCancelled; the partial file is kept).
    """
    from huggingface_hub import constants

    if entry.remote or not entry.files:
        raise R1ChatError(f"{entry.name} is remote-only: nothing to download ({entry.note})")
    t0 = time.monotonic()
    local = store.entry_paths(entry)
    if all(p.is_file() and intact(p) for p in local):
        return PullResult(entry, tuple(local), 0, 0, 0.0, True)
    if constants.is_offline_mode():
        raise offline_error(entry)
    folder = store.entry_dir(entry)
    folder.mkdir(parents=True, exist_ok=True)
    with store.entry_lock(entry):
        for p in local:
            if p.is_file() and not intact(p):
                p.unlink()  # cut short (a crash before the OS wrote it all): fetch it again
        remotes: list[RemoteFile | None] = [
            None if p.is_file() else resolve_remote(entry, i) for i, p in enumerate(local)
        ]
        sizes = [r.size if r else p.stat().st_size for r, p in zip(remotes, local, strict=True)]
        have = [(valid_part(r) if r else s) for r, s in zip(remotes, sizes, strict=True)]
        needed = sum(s - h for s, h in zip(sizes, have, strict=True))
        free = store.free_bytes(folder)
        if needed + SPACE_MARGIN > free:
            raise R1ChatError(
                f"not enough disk space in {folder}: {entry.name} needs "
                f"{human(needed)} more, {human(free)} free (R1CHAT_MODELS "
                "can move the models folder to a bigger disk)"
            )
        tracker = Tracker(entry, len(local), sum(sizes), sum(have), progress, cancel)
        t1 = time.monotonic()
        checks: list[str] = []
        for i, remote in enumerate(remotes):
            if remote is None:
                continue
            tracker.file, tracker.index = remote.repo_path, i + 1
            tracker.report(force=True)
            download_file(entry, i, remote, tracker, retries)
            checks.append(remote.check)
        tracker.report("done", force=True)
        _refuse_implausible(local)
    if entry.hub and entry.estimated:
        _learn_shape(entry, local[0])
    end = time.monotonic()
    return PullResult(
        entry,
        tuple(local),
        tracker.done - tracker.resumed,
        tracker.resumed,
        end - t0,
        False,
        end - t1,
        tuple(checks),
    )


def _refuse_implausible(paths: list[Path]) -> None:
    """A verified download whose header no model can have (layers, heads or context that
    llama.cpp would crash on) is deleted, not installed: its checksum only proves it is
    the file the Hub holds."""
    from r1chat.models.gguf import GGUFError, read_gguf

    try:
        read_gguf(paths[0])
    except GGUFError as e:
        for p in paths:
            p.unlink(missing_ok=True)
        raise R1ChatError(f"{e}; the download was deleted") from None


def _learn_shape(entry: Entry, path: Path) -> None:
    """A model pulled by its Hub name: its header's KV shape replaces the estimate."""
    from r1chat.models import hub_index
    from r1chat.models.fit import kv_shape
    from r1chat.models.gguf import read_gguf

    try:
        info = read_gguf(path)
    except R1ChatError:
        return  # loading it will say what is wrong with the file
    layers, kv_heads, k_len, v_len = kv_shape(info)
    context = int(info.arch_key("context_length", 0) or 0)
    hub_index.set_shape(entry.model, layers, kv_heads, (k_len + v_len) // 2, context)
