"""A crash inside llama.cpp is one line, never a silent death: `ask` runs in a forked child
and this process waits for it.

llama.cpp runs in-process, and a fault in its kernels (SIGSEGV, SIGILL) kills the process
before Python can say anything; in a pipe the user would see nothing at all. So the
command forks before it loads anything: the child does the work with the same stdin,
stdout and stderr (no copying, no speed lost), tells this process what it is running
(`tell`), and this process turns a death by signal into `error: llama.cpp crashed ...`
and a non-zero exit status (128 + the signal, as shells count it).

The child's last fact is its exit status, sent once its work is done (the history saved,
the model's lock let go) and its output closed: this process returns it at once, and
a pipe reads its end, while the child gives its memory back to the system (tens of
milliseconds for a model's caches) with nobody waiting.

Ctrl-C reaches both processes from the terminal; a SIGINT sent to this process alone
(`kill -INT PID`) is passed on. The child counts the two copies of one press as one
(`one_press`). If this process dies (`kill -9`), the child stops too (`core.lifeline`),
so no reply runs on with nobody to read it. Where there is no `fork` (Windows) the work
runs here, unguarded.

Why a fork and not the model host's child process (`r1chat.host`) that the chat and
`serve` use: `ask` is one reply whose output goes straight to the user's stdout, and its
first token is measured from launch. A fork costs a millisecond and shares what is
already imported; a new interpreter would import r1chat again and pickle every event
back through a pipe, for no gain when the whole program is that one reply.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from r1chat.core.lifeline import lifeline, watch

CRASHES = {
    signal.SIGSEGV: "a segmentation fault",
    signal.SIGILL: "an illegal instruction",
    signal.SIGBUS: "a bus error",
    signal.SIGFPE: "an arithmetic fault",
    signal.SIGABRT: "an abort",
}
ORPHAN_GRACE_S = 2.0
"""How long a child whose parent died has to stop by itself before it is ended."""
SAME_PRESS_S = 0.25
"""Two SIGINTs closer than this are one Ctrl-C (the terminal's copy and the forwarded one)."""

_tell_fd: int | None = None


def tell(**facts: Any) -> None:
    """In the child: what the parent names if this process dies (the model, the log)."""
    if _tell_fd is not None:
        with contextlib.suppress(OSError):
            os.write(_tell_fd, (json.dumps(facts) + "\n").encode())


def forked() -> bool:
    """Whether this is the child `guarded` forked (it ends by `os._exit`: nothing it holds
    is freed before its memory goes back to the system)."""
    return _tell_fd is not None


def one_press(handler: Callable[[int, Any], None]) -> Callable[[int, Any], None]:
    """`handler`, called once for SIGINTs that arrive together."""
    last = [-SAME_PRESS_S]

    def on_signal(signum: int, frame: Any) -> None:
        now = time.monotonic()
        if now - last[0] < SAME_PRESS_S:
            return
        last[0] = now
        handler(signum, frame)

    return on_signal


def guarded(work: Callable[[], int]) -> int:
    """Run `work` (which turns its errors into an exit status itself) in a child process;
    returns its status, after one line on stderr if it crashed."""
    if not hasattr(os, "fork"):
        return work()
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    watched, kept = lifeline()
    pid = os.fork()
    if pid == 0:  # the child: do the work, then leave without running the parent's cleanup
        os.close(read_end)
        os.close(kept)  # only the parent holds it: its end closes when the parent dies
        global _tell_fd
        _tell_fd = write_end
        os.set_blocking(write_end, False)  # a full pipe drops a fact, never blocks
        code = 1
        try:
            signal.signal(signal.SIGINT, one_press(signal.default_int_handler))
            watch(watched, _orphaned)
            code = work()
        except BaseException:  # a bug of ours: its traceback, as an unguarded run shows it
            traceback.print_exc()
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            _finish(code)
    os.close(write_end)
    os.close(watched)
    try:
        return _wait(pid, read_end)
    finally:
        os.close(kept)


def _finish(code: int) -> None:
    """In the child, its work done: flush and close its output, tell the parent `code`
    (its wait ends there), and leave."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    with contextlib.suppress(OSError):  # (a pipe's reader sees its end now)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
    tell(exit=code)
    os._exit(code)


def _orphaned() -> None:
    """In the child, its parent gone (killed): stop as Ctrl-C stops it (the reply is saved
    as stopped), and leave for good soon after, whatever it was doing."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(os.getpid(), signal.SIGINT)
    time.sleep(ORPHAN_GRACE_S)
    os._exit(128 + signal.SIGHUP)


def _wait(pid: int, facts_fd: int) -> int:
    def forward(signum: int, frame: Any) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    facts = _facts(facts_fd)
    if "exit" in facts:  # (the child ends by itself; its last step cannot fail)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return int(facts["exit"])
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            return 1
        except InterruptedError:  # pragma: no cover - PEP 475 retries it
            continue
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    sig = signal.Signals(os.WTERMSIG(status))
    if sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
        return 128 + sig
    print(f"error: {crash_line(sig, facts)}", file=sys.stderr, flush=True)
    return 128 + sig


def crash_line(sig: signal.Signals, facts: dict[str, Any]) -> str:
    """`llama.cpp crashed (SIGSEGV, a segmentation fault) while running r1:7b; ...`."""
    if sig == signal.SIGKILL:
        how = "was killed (SIGKILL: out of memory, or another program killed it)"
        return f"r1chat {how} while running {facts.get('model', 'the model')}"
    what = f"{sig.name}, {CRASHES[sig]}" if sig in CRASHES else sig.name
    if "model" not in facts:
        return f"r1chat crashed ({what}) before it loaded a model"
    tries = []
    if facts.get("repack", True):
        tries.append("--no-repack")
    if facts.get("gpu_layers"):
        tries.append("fewer GPU layers (--gpu-layers N)")
    log = f"; llama.cpp's log: {facts['log']}" if facts.get("log") else ""
    hint = f"; try {' or '.join(tries)}" if tries else ""
    return f"llama.cpp crashed ({what}) while running {facts['model']}{log}{hint}"


def _facts(fd: int) -> dict[str, Any]:
    """What the child told, read until it tells its exit status or its end closes (it
    died)."""
    facts: dict[str, Any] = {}
    pending = b""
    with contextlib.suppress(OSError):
        while "exit" not in facts and (chunk := os.read(fd, 65536)):
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                with contextlib.suppress(ValueError):
                    facts.update(json.loads(line))
    os.close(fd)
    return facts
