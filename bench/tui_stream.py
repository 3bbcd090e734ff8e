"""The chat UI under a long stream, against `r1chat ask --json` on the same model, in one run.

1. Streaming the long-trace fixture (6,000 reasoning tokens, then a ~1,500-token Markdown
   answer with headings, lists, code blocks and tables) through the running app (headless
   `App.run_test`, 160x48, the full widget tree and compositor; a fresh process) vs
   `r1chat ask --json` (a fresh process): generation time and the ratio.
2. The UI's time per 1,000 tokens at the start and at the end of the stream (each token
   counted when its batch has been handed to the widgets).
3. Start-to-first-paint of `r1chat chat` in a real terminal (tmux), model loading in the
   background.
4. RSS of the app after a 20-turn conversation (1,000 reasoning + 400 answer tokens a turn).

Usage: python bench/tui_stream.py [--runs 3] [--turns 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, ask_json, median, table

from tests.fixtures.scripted import write_long_model

PROMPT = "Explain the plan."


# -- child: the app, headless ------------------------------------------------------------


def _child_app(model: str, out: str, turns: int) -> None:
    """Run the app in this process; write timings (and RSS) as JSON to `out`."""
    from r1chat.config import Config
    from r1chat.history import History
    from r1chat.settings import Settings
    from r1chat.tui.app import ChatApp
    from r1chat.tui.generation import AnswerChunk, ThinkingChunk

    from r1chat.events import Done

    marks: list[tuple[float, int]] = []
    result: dict[str, object] = {}

    class TimedApp(ChatApp):
        tokens = 0
        done_at = 0.0
        done: Done | None = None

        async def _handle(self, job_id, item):  # type: ignore[no-untyped-def]
            await super()._handle(job_id, item)
            if isinstance(item, (ThinkingChunk, AnswerChunk)):
                self.tokens += item.count
                marks.append((time.perf_counter(), self.tokens))
            elif isinstance(item, Done):
                self.done_at = time.perf_counter()
                self.done = item

    async def run() -> None:
        history = History(Path(tempfile.mkdtemp()) / "history.sqlite3")
        app = TimedApp(Settings(model=model), config=Config({}), history=history)
        async with app.run_test(size=(160, 48)) as pilot:
            while app.info is None and app.load_error is None:
                await pilot.pause(0.02)
            if app.info is None:
                raise SystemExit(app.load_error)
            result["rss_loaded_mb"] = _rss_mb()
            for turn in range(turns):
                app.done = None
                marks.clear()
                app.tokens = 0
                start = time.perf_counter()
                await app.send(f"{PROMPT} ({turn + 1})")
                while app.done is None:
                    await asyncio.sleep(0.005)
                while app.current is not None:
                    await asyncio.sleep(0.005)
                await pilot.pause()
                if turn == 0:
                    stats = app.done.stats
                    result.update(
                        ui_s=app.done_at - start,
                        engine_total_s=stats.total_s,
                        engine_thinking_s=stats.thinking_s,
                        tokens=stats.thinking_tokens + stats.answer_tokens,
                        marks=[(t - start, n) for t, n in marks],
                    )
            result["rss_mb"] = _rss_mb()
            result["turns"] = turns

    asyncio.run(run())
    Path(out).write_text(json.dumps(result))


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_app(model: Path, turns: int = 1) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    env = {**os.environ, "R1CHAT_HOME": tempfile.mkdtemp()}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, __file__, "--child-app", str(model), out, str(turns)],
        check=True,
        env=env,
        cwd=ROOT,
    )
    result = json.loads(Path(out).read_text())
    result["wall_s"] = time.perf_counter() - start
    os.unlink(out)
    return result


def per_thousand(marks: list[tuple[float, int]], lo: int, hi: int) -> float:
    """Seconds the UI took to hand tokens lo..hi to the widgets, per 1,000 tokens."""

    def time_at(n: int) -> float:
        for t, count in marks:
            if count >= n:
                return t
        return marks[-1][0]

    return (time_at(hi) - time_at(lo)) / ((hi - lo) / 1000)


# -- first paint in a real terminal ------------------------------------------------------


def first_paint(model: Path) -> float | None:
    """Seconds from launching `r1chat chat` in tmux to the prompt box on screen."""
    tmux = shutil.which("tmux")
    if tmux is None:
        return None
    session = f"r1bench{os.getpid()}"
    home = tempfile.mkdtemp()
    cmd = (
        f"cd {ROOT} && R1CHAT_HOME={home} TERM=xterm-256color "
        f"{sys.executable} -m r1chat chat -m {model}"
    )
    start = time.perf_counter()
    subprocess.run([tmux, "new-session", "-d", "-s", session, "-x", "120", "-y", "40", cmd],
                   check=True)  # fmt: skip
    try:
        while time.perf_counter() - start < 30:
            screen = subprocess.run(
                [tmux, "capture-pane", "-p", "-t", session], capture_output=True, text=True
            ).stdout
            if "Ask anything" in screen:
                return time.perf_counter() - start
            time.sleep(0.01)
        return None
    finally:
        subprocess.run([tmux, "kill-session", "-t", session], capture_output=True)


# -- main --------------------------------------------------------------------------------


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child-app":
        if os.environ.get("R1SW"):
            sys.setswitchinterval(float(os.environ["R1SW"]))
        _child_app(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--turns", type=int, default=20)
    args = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="r1chat-tui-bench-"))
    long_model = write_long_model(directory).path
    turn_model = write_long_model(directory, 1000, 400).path

    rows = []
    ratios, ask_times, app_times, starts, ends = [], [], [], [], []
    for _ in range(args.runs):
        ask = ask_json("-m", str(long_model), PROMPT)
        app = run_app(long_model)
        ask_s, app_s = ask["stats"]["total_s"], app["ui_s"]
        ask_times.append(ask_s)
        app_times.append(app_s)
        ratios.append(app_s / ask_s)
        n = app["tokens"]
        starts.append(per_thousand(app["marks"], 0, 1000))
        ends.append(per_thousand(app["marks"], n - 1000, n))
    rows.append(["`ask --json`: generation (s)", f"{median(ask_times):.2f}"])
    rows.append(["app: prompt sent → last token on the widgets (s)", f"{median(app_times):.2f}"])
    rows.append(["ratio app / ask (≤ 1.3)", f"{median(ratios):.2f}×"])
    rows.append(["app: s per 1,000 tokens, first 1,000", f"{median(starts):.3f}"])
    rows.append(["app: s per 1,000 tokens, last 1,000", f"{median(ends):.3f}"])
    paints = [p for p in (first_paint(long_model) for _ in range(args.runs)) if p is not None]
    if paints:
        rows.append(["start → first paint, tmux 120x40 (s)", f"{median(paints):.2f}"])
    conv = run_app(turn_model, args.turns)
    rows.append(["RSS with the model loaded (MB)", f"{conv['rss_loaded_mb']:.0f}"])
    rows.append([f"RSS after a {args.turns}-turn conversation (MB)", f"{conv['rss_mb']:.0f}"])
    print(f"{long_model.name}: {app['tokens']} tokens; medians of {args.runs} runs\n")
    print(table(["measure", "value"], rows))
    shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
