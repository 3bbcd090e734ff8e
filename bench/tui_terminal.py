"""The chat in a real terminal (tmux) against the whole `r1chat ask` process, in one run.

The long-trace fixture (6,000 reasoning tokens, then a ~1,500-token Markdown answer), one
llama.cpp thread. Chat: `r1chat chat` in a tmux pane (160x48, then 80x24), the model
loaded, then Enter -> the reply's tokens/s on the status bar (set when the reply's end has
reached the widgets; the pane is read with `capture-pane` every 20 ms). Ask: the whole
`r1chat ask` process, launch to exit, output to a file. Runs alternate; medians.

Usage: python bench/tui_terminal.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, median, table

from tests.fixtures.scripted import write_long_model

PROMPT = "Explain the plan."
POLL_S = 0.02


def pane(name: str) -> str:
    out = subprocess.run(["tmux", "capture-pane", "-p", "-t", name], capture_output=True)
    return out.stdout.decode("utf-8", "replace")


def wait(name: str, seen: str, timeout: float = 120.0) -> float:
    deadline = time.monotonic() + timeout
    while seen not in pane(name):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {seen!r}:\n{pane(name)}")
        time.sleep(POLL_S)
    return time.monotonic()


def chat(model: Path, cols: int, rows: int, home: str) -> float:
    """Enter -> the reply's end on screen, in seconds."""
    name = f"r1bench{os.getpid()}"
    command = f"R1CHAT_HOME={home} {sys.executable} -m r1chat chat -m {model} --threads 1"
    subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", name, "-x", str(cols), "-y", str(rows), command],
        check=True,
        cwd=ROOT,
    )
    try:
        wait(name, "CPU 1 thread")  # the model is loaded
        time.sleep(0.5)
        subprocess.run(["tmux", "send-keys", "-t", name, PROMPT], check=True)
        start = time.monotonic()
        subprocess.run(["tmux", "send-keys", "-t", name, "Enter"], check=True)
        return wait(name, "tok/s") - start
    finally:
        subprocess.run(["tmux", "send-keys", "-t", name, "C-q"], capture_output=True)
        time.sleep(0.5)
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def ask(model: Path, home: str) -> float:
    """The whole `r1chat ask` process, launch to exit, in seconds."""
    env = {**os.environ, "R1CHAT_HOME": home}
    argv = [sys.executable, "-m", "r1chat", "ask", "-m", str(model), "--threads", "1", PROMPT]
    with tempfile.TemporaryFile() as out:
        start = time.monotonic()
        subprocess.run(argv, stdout=out, stderr=subprocess.DEVNULL, env=env, cwd=ROOT, check=True)
        return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        raise SystemExit("tmux is needed")
    directory = Path(tempfile.mkdtemp(prefix="r1chat-terminal-bench-"))
    model = write_long_model(directory).path
    home = str(directory / "home")
    sizes = [(160, 48), (80, 24)]
    asks: list[float] = []
    chats: dict[tuple[int, int], list[float]] = {size: [] for size in sizes}
    for _ in range(args.runs):
        asks.append(ask(model, home))
        for size in sizes:
            chats[size].append(chat(model, *size, home))
    rows = [["`r1chat ask` whole process, launch → exit (s)", f"{median(asks):.2f}", "1.00×"]]
    for (cols, lines), times in chats.items():
        rows.append(
            [
                f"chat in tmux {cols}x{lines}: Enter → end on screen (s)",
                f"{median(times):.2f}",
                f"{median(times) / median(asks):.2f}×",
            ]
        )
    print(f"{model.name}, --threads 1, medians of {args.runs} alternating runs\n")
    print(table(["measure", "s", "vs ask"], rows))
    shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
