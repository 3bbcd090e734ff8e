"""The chat UI under a long stream, against `r1chat ask --json` on the same model, in one run.

1. Streaming the long-trace fixture (6,000 reasoning tokens, then a ~1,500-token Markdown
   answer with headings, lists, code blocks and tables) through the running app (headless
   `App.run_test` at 160x48: the whole widget tree, layout and compositor; a fresh process)
   vs `r1chat ask --json` (a fresh process): prompt sent -> last token handed to the
   widgets, against ask's own generation time. Runs alternate; medians are reported.
2. Cost per 1,000 tokens at the start and at the end of the stream: wall time, and the UI
   thread's own CPU time (what the UI spends; it must not grow with the reply).
3. Start-to-first-paint of `r1chat chat` in a real terminal (tmux 120x40): from launch to
   the prompt box on screen (the model loads in the background).
4. RSS of the app with the model loaded, and after a 20-turn conversation (1,500 reasoning
   tokens and a short answer a turn; reasoning is not re-sent, so 20 turns fit the context).
5. The workbench: the same stream with a file attached (`@notes.md`) and MCP tools offered
   (the fixture server's two; the model answers in text, held by the tools' grammar, as a
   first distill's answer is when tools are offered), against the same `ask`.

Both sides use the same `--threads` (default 1: the scripted model needs no more, and on a
2-core machine a second llama.cpp thread would fight the UI thread for a core).

Usage: python bench/tui_stream.py [--runs 5] [--turns 20] [--threads 1] [--workbench]
[--only-stream]
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

from r1chat.core.turn import run_turn
from tests.fixtures.scripted import write_long_model

PROMPT = "Explain the plan."


# -- child: the app, headless ------------------------------------------------------------


def _child_app(
    model: str, out: str, turns: int, threads: int, n_ctx: int, workbench: bool = False
) -> None:
    """Run the app in this process; write timings (and RSS) as JSON to `out`; with
    `workbench`, a file attached and MCP tools offered."""
    from r1chat.config.file import Config
    from r1chat.config.settings import Settings
    from r1chat.core.events import Done
    from r1chat.history.store import History
    from r1chat.host.outcomes import AnswerChunk, Failed, ThinkingChunk
    from r1chat.mcp.client import McpHub
    from r1chat.mcp.config import ServerSpec
    from r1chat.session.runner import in_child_process
    from r1chat.tui.app import ChatApp

    marks: list[tuple[float, int, float]] = []  # (wall, tokens so far, UI-thread CPU)
    result: dict[str, object] = {}

    class TimedApp(ChatApp):
        """The chat app, noting when each batch and the reply's end reach the widgets."""

        tokens = 0
        done_at = 0.0
        done: Done | None = None
        failed: str | None = None

        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*args, **kwargs)
            inbox = self.chat.inbox
            handle = inbox._handle

            async def timed(job_id, item):  # type: ignore[no-untyped-def]
                await handle(job_id, item)
                if isinstance(item, (ThinkingChunk, AnswerChunk)):
                    self.tokens += item.count
                    marks.append((time.perf_counter(), self.tokens, time.thread_time()))
                elif isinstance(item, Done):
                    self.done_at = time.perf_counter()
                    self.done = item
                elif isinstance(item, Failed):
                    self.failed = item.message

            inbox._handle = timed

    async def run() -> None:
        history = History(Path(tempfile.mkdtemp()) / "history.sqlite3")
        settings = Settings(model=model, threads=threads, n_ctx=n_ctx)
        mcp = None
        prompt = PROMPT
        if workbench:
            server = str(ROOT / "tests" / "fixtures" / "mcp_server.py")
            mcp = McpHub([ServerSpec("bench", sys.executable, (server,))])
            folder = Path(tempfile.mkdtemp())
            (folder / "notes.md").write_text("# Notes\n\n" + "- a point to keep in mind\n" * 40)
            os.chdir(folder)
            prompt = f"{PROMPT} See @notes.md"
        app = TimedApp(
            settings, config=Config({}), history=history, runner=in_child_process, mcp=mcp
        )
        async with app.run_test(size=(160, 48)) as pilot:
            while app.chat.session.info is None and app.chat.session.load_error is None:
                await pilot.pause(0.02)
            if app.chat.session.info is None:
                raise SystemExit(app.chat.session.load_error)
            while mcp is not None and app.chat.session.mcp is None:
                await pilot.pause(0.02)
            child = getattr(app.chat.session.runner, "pid", None)
            result["rss_loaded_mb"] = _rss_mb() + _rss_mb(child)
            result["rss_ui_loaded_mb"] = _rss_mb()
            for turn in range(turns):
                app.done, app.tokens = None, 0
                marks.clear()
                start, cpu0 = time.perf_counter(), time.thread_time()
                await app.chat.send(f"{prompt} ({turn + 1})")
                while app.done is None and app.failed is None:
                    await asyncio.sleep(0.005)
                if app.failed:
                    raise SystemExit(f"turn {turn + 1} failed: {app.failed}")
                while app.chat.session.current is not None:
                    await asyncio.sleep(0.005)
                await pilot.pause()
                if turn == 0 and app.done is not None:
                    stats = app.done.stats
                    result.update(
                        ui_s=app.done_at - start,
                        engine_total_s=stats.total_s,
                        engine_thinking_s=stats.thinking_s,
                        thinking_tokens=stats.thinking_tokens,
                        tokens=stats.thinking_tokens + stats.answer_tokens,
                        marks=[(t - start, n, c - cpu0) for t, n, c in marks],
                    )
            result["rss_mb"] = _rss_mb() + _rss_mb(child)
            result["rss_ui_mb"] = _rss_mb()
            result["turns"] = turns

    asyncio.run(run())
    Path(out).write_text(json.dumps(result))


def _rss_mb(pid: int | str | None = "self") -> float:
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_app(
    model: Path, *, turns: int = 1, threads: int = 1, n_ctx: int = 8192, workbench: bool = False
) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    env = {**os.environ, "R1CHAT_HOME": tempfile.mkdtemp()}
    args = [str(model), out, str(turns), str(threads), str(n_ctx), str(int(workbench))]
    subprocess.run([sys.executable, __file__, "--child-app", *args], check=True, env=env, cwd=ROOT)
    result = json.loads(Path(out).read_text())
    os.unlink(out)
    return result


def per_thousand(marks: list[list[float]], lo: int, hi: int) -> tuple[float, float]:
    """(wall s, UI-thread CPU s) spent from token `lo` to token `hi`, per 1,000 tokens."""

    def at(n: int) -> list[float]:
        return next((m for m in marks if m[1] >= n), marks[-1])

    a, b = (at(lo) if lo else [0.0, 0, 0.0]), at(hi)
    scale = 1000 / (hi - lo)
    return (b[0] - a[0]) * scale, (b[2] - a[2]) * scale


def per_batch(marks: list[list[float]], lo: int, hi: int) -> float:
    """UI-thread CPU seconds per batch between token `lo` and token `hi`."""
    inside = [m for m in marks if lo <= m[1] <= hi]
    if len(inside) < 2:
        return 0.0
    return (inside[-1][2] - inside[0][2]) / (len(inside) - 1)


def engine_alone(model: Path, threads: int, n_ctx: int) -> dict[int, float]:
    """Seconds per 1,000 reasoning tokens (keyed by the last token) of `run_turn` with
    nothing else running: how fast the engine itself goes as the context fills."""
    from r1chat.config.settings import Settings
    from r1chat.core.events import ThinkingDelta
    from r1chat.core.messages import Message
    from r1chat.core.request import Control, Request
    from r1chat.launch.engines import open_engine

    engine = open_engine(Settings(model=str(model), threads=threads, n_ctx=n_ctx))
    marks, n, start = {0: 0.0}, 0, time.perf_counter()
    for event in run_turn(engine, Request((Message("user", PROMPT),)), Control()):
        if isinstance(event, ThinkingDelta):
            n += 1
            if n % 1000 == 0:
                marks[n] = time.perf_counter() - start
    engine.close()
    return {k: marks[k] - marks[k - 1000] for k in marks if k}


# -- first paint in a real terminal ------------------------------------------------------


def first_paint(model: Path, threads: int, attempt: int) -> float | None:
    """Seconds from launching `r1chat chat` in tmux to the prompt box on screen."""
    tmux = shutil.which("tmux")
    if tmux is None:
        return None
    socket = ["-L", f"r1bench-{os.getpid()}-{attempt}"]  # a private tmux server
    home = tempfile.mkdtemp()
    cmd = (
        f"cd {ROOT} && R1CHAT_HOME={home} TERM=xterm-256color "
        f"{sys.executable} -m r1chat chat -m {model} --threads {threads}"
    )
    start = time.perf_counter()
    launched = subprocess.run(
        [tmux, *socket, "new-session", "-d", "-s", "paint", "-x", "120", "-y", "40", cmd],
        capture_output=True,
    )
    try:
        if launched.returncode != 0:
            return None
        while time.perf_counter() - start < 30:
            screen = subprocess.run(
                [tmux, *socket, "capture-pane", "-p", "-t", "paint"],
                capture_output=True,
                text=True,
            ).stdout
            if "Ask anything" in screen:
                return time.perf_counter() - start
            time.sleep(0.005)
        return None
    finally:
        subprocess.run([tmux, *socket, "kill-server"], capture_output=True)


# -- main --------------------------------------------------------------------------------


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child-app":
        model, out, turns, threads, n_ctx, workbench = sys.argv[2:8]
        _child_app(model, out, int(turns), int(threads), int(n_ctx), workbench == "1")
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--workbench", action="store_true", help="also the chat with a file and MCP tools"
    )
    parser.add_argument(
        "--only-stream", action="store_true", help="the stream rows only (no 20k, paint, RSS)"
    )
    args = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="r1chat-tui-bench-"))
    long_model = write_long_model(directory).path
    huge_model = write_long_model(directory, 20000, 300).path
    turn_model = write_long_model(directory, 1500, 60).path
    threads = ["--threads", str(args.threads)]

    ask_s, app_s, ratios, bench_s, bench_ratios = [], [], [], [], []
    early, late, answer_cpu = [], [], []
    tokens = thinking = 0
    for _ in range(args.runs):
        ask = ask_json("-m", str(long_model), *threads, PROMPT)["stats"]
        app = run_app(long_model, threads=args.threads)
        ask_s.append(ask["total_s"])
        app_s.append(app["ui_s"])
        ratios.append(app["ui_s"] / ask["total_s"])
        if args.workbench:
            with_tools = run_app(long_model, threads=args.threads, workbench=True)
            bench_s.append(with_tools["ui_s"])
            bench_ratios.append(with_tools["ui_s"] / ask["total_s"])
        tokens, thinking, marks = app["tokens"], app["thinking_tokens"], app["marks"]
        early.append(per_thousand(marks, 1000, 3000))
        late.append(per_thousand(marks, thinking - 2500, thinking - 500))
        answer_cpu.append(per_thousand(marks, thinking, tokens)[1])
    stream_rows = [
        ["`r1chat ask --json`: generation (s)", f"{median(ask_s):.2f}"],
        ["chat app: prompt sent → last token on the widgets (s)", f"{median(app_s):.2f}"],
        ["ratio app / ask (target ≤ 1.3)", f"{median(ratios):.2f}×"],
    ]
    if bench_s:
        stream_rows += [
            ["chat with @notes.md and MCP tools offered (s)", f"{median(bench_s):.2f}"],
            ["ratio workbench app / ask", f"{median(bench_ratios):.2f}×"],
        ]
    if args.only_stream:
        print(f"{long_model.name}: --threads {args.threads}; medians of {args.runs} runs\n")
        print(table(["measure", "value"], stream_rows))
        return 0
    huge = run_app(huge_model, threads=args.threads, n_ctx=32768)
    huge_thinking = huge["thinking_tokens"]
    bare = engine_alone(huge_model, args.threads, 32768)

    def ms(pairs: list[tuple[float, float]]) -> str:
        wall, cpu = median([p[0] for p in pairs]), median([p[1] for p in pairs])
        return f"{wall * 1000:.0f} / {cpu * 1000:.0f}"

    per_k = "reasoning, per 1,000 tokens, wall / UI-thread CPU (ms)"
    rows = [
        *stream_rows,
        [f"{per_k}: tokens 1,000–3,000", ms(early)],
        [f"{per_k}: tokens {thinking - 2500:,}–{thinking - 500:,}", ms(late)],
        [
            f"Markdown answer ({tokens - thinking:,} tokens): UI-thread CPU per 1,000 tokens (ms)",
            f"{median(answer_cpu) * 1000:.0f}",
        ],
    ]
    end = huge_thinking - 500  # the batch that ends the reasoning carries the answer's start
    hi = f"{end - 1000:,}–{end:,}"
    hm = huge["marks"]
    rows += [
        [
            f"20k reasoning: engine alone (no UI), ms per 1,000 tokens: 1,000–2,000 / {hi}",
            f"{bare[2000] * 1000:.0f} / {bare[max(k for k in bare if k <= end)] * 1000:.0f}",
        ],
        [
            f"20k reasoning: app, wall ms per 1,000 tokens: 1,000–2,000 / {hi}",
            f"{per_thousand(hm, 1000, 2000)[0] * 1000:.0f} / "
            f"{per_thousand(hm, end - 1000, end)[0] * 1000:.0f}",
        ],
        [
            f"20k reasoning: app, UI-thread CPU per batch (ms): 1,000–4,000 / "
            f"{end - 3000:,}–{end:,}",
            f"{per_batch(hm, 1000, 4000) * 1000:.1f} / {per_batch(hm, end - 3000, end) * 1000:.1f}",
        ],
    ]
    paints = [first_paint(long_model, args.threads, i) for i in range(args.runs)]
    if good := [p for p in paints if p is not None]:
        rows.append(["`r1chat chat` start → first paint, tmux 120x40 (s)", f"{median(good):.2f}"])
    conv = run_app(turn_model, turns=args.turns, threads=args.threads, n_ctx=32768)
    rows.append(
        [
            "RSS, model loaded, empty chat: UI + model process (UI alone) (MB)",
            f"{conv['rss_loaded_mb']:.0f} ({conv['rss_ui_loaded_mb']:.0f})",
        ]
    )
    rows.append(
        [
            f"RSS after a {args.turns}-turn conversation: UI + model process (UI alone) (MB)",
            f"{conv['rss_mb']:.0f} ({conv['rss_ui_mb']:.0f})",
        ]
    )
    print(
        f"{long_model.name}: {tokens:,} tokens ({thinking:,} reasoning); --threads "
        f"{args.threads}; medians of {args.runs} alternating runs\n"
    )
    print(table(["measure", "value"], rows))
    shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
