"""Write the README's screenshots of the chat (assets/*.png) from the real app.

The app runs headless (`App.run_test`) with the scripted models through the real
llama.cpp; Textual saves SVG screenshots, converted to PNG with `rsvg-convert`
(Debian: librsvg2-bin) or `cairosvg` (PyPI), whichever is there.

Usage: python bench/tui_screenshots.py [OUTDIR]   (default: assets/)
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import ROOT

from tests.fixtures.scripted import write_answer_model, write_long_model
from tests.fixtures.scripted_tools import write_marked_call_model

_LEADING = re.compile(
    r'(<text [^>]*?x=")([\d.]+)("[^>]*?textLength=")([\d.]+)("[^>]*>)((?:&#160;)+)([^<]*)</text>'
)


def _keep_indents(svg: Path) -> None:
    """rsvg drops the leading spaces of a text run, which flattens the indentation of
    code in the screenshots; move such runs right instead."""

    def fix(m: re.Match[str]) -> str:
        lead, rest = m.group(6).count("&#160;"), m.group(7)
        chars = lead + len(re.sub(r"&#?\w+;", "x", rest))
        cell = float(m.group(4)) / max(1, chars)
        x, length = float(m.group(2)) + lead * cell, float(m.group(4)) - lead * cell
        return f"{m.group(1)}{x:.1f}{m.group(3)}{length:.1f}{m.group(5)}{rest}</text>"

    svg.write_text(_LEADING.sub(fix, svg.read_text(encoding="utf-8")), encoding="utf-8")


def to_png(svg: Path, png: Path) -> Path:
    _keep_indents(svg)
    if shutil.which("rsvg-convert"):
        subprocess.run(["rsvg-convert", str(svg), "-o", str(png)], check=True)
        return png
    try:
        import cairosvg  # type: ignore[import-not-found]
    except ImportError:
        print(f"no rsvg-convert or cairosvg: left {svg}", file=sys.stderr)
        return svg
    cairosvg.svg2png(url=str(svg), write_to=str(png))
    return png


async def shoot(outdir: Path, models: Path) -> list[Path]:
    from r1chat.config.file import Config
    from r1chat.config.settings import Settings
    from r1chat.history.store import History
    from r1chat.mcp.client import McpHub
    from r1chat.mcp.config import ServerSpec
    from r1chat.session.runner import in_child_process
    from r1chat.tui.app import ChatApp
    from r1chat.tui.widgets.turns import AssistantTurn

    long_model = write_long_model(models, 2500, 400, seed=7)
    answer_model = write_answer_model(models)
    shots: list[Path] = []

    def app_for(model: Path, mcp: McpHub | None = None) -> ChatApp:
        return ChatApp(
            Settings(model=str(model), threads=1),
            config=Config.load(),
            history=History(),
            runner=in_child_process,
            mcp=mcp,
        )

    async def ready(app: ChatApp) -> None:
        while app.chat.session.info is None and app.chat.session.load_error is None:
            await asyncio.sleep(0.02)

    async def finished(app: ChatApp, pilot) -> None:  # type: ignore[no-untyped-def]
        while app.chat.session.current is not None:
            await asyncio.sleep(0.02)
        await app.chat.drain_now()
        await pilot.pause()

    def save(app: ChatApp, name: str) -> None:
        svg = outdir / f"{name}.svg"
        app.save_screenshot(filename=svg.name, path=str(outdir))
        shots.append(to_png(svg, outdir / f"{name}.png"))
        if shots[-1] != svg:
            svg.unlink()

    # 1. reasoning streaming beside the answer, wide terminal
    app = app_for(long_model.path)
    async with app.run_test(size=(140, 40)) as pilot:
        await ready(app)
        await app.chat.send("Plan the data pipeline, with code, step by step.")
        turn = app.chat.transcript.query(AssistantTurn).last()
        while turn._thinking_tokens < 1200 and turn.live:
            await asyncio.sleep(0.005)
        await app.chat.drain_now()
        turn.tick()
        save(app, "chat-thinking")
        await finished(app, pilot)
        app.chat.transcript.scroll_to_widget(turn, top=True, animate=False)
        await pilot.pause()
        save(app, "chat-side-by-side")
        await pilot.press("ctrl+l")  # the whole reasoning in the reader, searched
        await pilot.pause()
        await pilot.press(*"pattern")
        await pilot.pause(0.3)
        save(app, "chat-reader")

    # 2. a narrow terminal: stacked panes, the chats sidebar with a search
    app = app_for(answer_model.path)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(app)
        for prompt in ("What is 2 + 2?", "Check that sum twice."):
            await app.chat.send(prompt)
            await finished(app, pilot)
            await pilot.press("ctrl+n")
        await app.chat.send("And what about 3 + 3?")
        await finished(app, pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        app.chat.sidebar.query_one("#search").value = "sum"  # type: ignore[attr-defined]
        await pilot.pause(0.4)
        save(app, "chat-sidebar")

    # 3. a file attached with @path: the chip on the turn, Tab's completions, the meter
    work = models.parent / "work"
    work.mkdir()
    (work / "meeting-notes.md").write_text(
        "# Launch meeting\n\n- Launch moves to Tuesday 14 May.\n- Ana owns the release "
        "notes.\n- Budget: 12,000 EUR, approved.\n- Risk: the payment provider's API "
        "change.\n"
    )
    (work / "report-q3.md").write_text("# Q3\n\nRevenue 1.2 M.\n")
    (work / "report-q4.md").write_text("# Q4\n\nRevenue 1.5 M.\n")
    here = Path.cwd()
    os.chdir(work)
    try:
        app = app_for(answer_model.path)
        async with app.run_test(size=(120, 32)) as pilot:
            await ready(app)
            await app.chat.send("Summarise @meeting-notes.md in three bullets.")
            await finished(app, pilot)
            await pilot.press(*"Now compare with @rep", "tab")
            await pilot.press(*"4.md ")
            while app.chat.session.draft_used is None:
                await asyncio.sleep(0.05)
                await app.chat.drain_now()
            app.chat._show_status()
            await pilot.pause()
            save(app, "chat-attach")
    finally:
        os.chdir(here)

    # 4. branches: the second prompt edited, its old version chosen with alt+up
    app = app_for(answer_model.path)
    async with app.run_test(size=(120, 32)) as pilot:
        await ready(app)
        for prompt in ("What is 2 + 2?", "Now multiply it by 3.", "And add 5."):
            await app.chat.send(prompt)
            await finished(app, pilot)
        await pilot.press("alt+up", "up", "up", "up", "e", *" Then halve it.", "enter")
        await finished(app, pilot)
        await pilot.press("alt+up", "up")
        await pilot.pause()
        save(app, "chat-branches")

    # 5. an MCP tool: the call's card between the reasoning and the next round, asked
    server = ServerSpec("weather", sys.executable, (str(ROOT / "tests/fixtures/mcp_server.py"),))
    caller = write_marked_call_model(models)
    app = app_for(caller.path, McpHub([server]))
    async with app.run_test(size=(120, 34)) as pilot:
        await ready(app)
        while app.chat.session.mcp is None:
            await asyncio.sleep(0.05)
        await app.chat.send("What is the weather in Paris?")
        while not app.chat.session.calling:
            await asyncio.sleep(0.05)
            await app.chat.drain_now()
        await pilot.pause(0.3)
        await pilot.press("y")
        while len(app.chat.transcript.query("ToolCard")) < 2:
            await asyncio.sleep(0.05)
        await pilot.pause(0.3)
        app.chat.transcript.scroll_end(animate=False)
        await pilot.pause()
        save(app, "chat-tools")
        await pilot.press("escape")
        await pilot.pause(0.3)
    return shots


def main() -> int:
    outdir = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "assets"
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["R1CHAT_HOME"] = str(Path(tmp) / "home")
        models = Path(tmp) / "models"
        models.mkdir()
        shots = asyncio.run(shoot(outdir.resolve(), models))
    for shot in shots:
        print(shot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
