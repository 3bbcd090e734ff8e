"""SVG snapshots of the chat (pytest-textual-snapshot): a finished turn side by side and
stacked, the collapsed state, the sidebar, the settings. Update with
`pytest tests/tui/test_tui_snapshots.py --snapshot-update`, then look at the report.

Deterministic: `r1chat.core.turn`'s clock is replaced by one that ticks 10 ms a call, so the
durations, TTFT and tokens/s in the titles and the status bar are the same every run
(the model runs in this process for that; the chat normally runs it in a child).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from types import SimpleNamespace

import pytest
from textual.pilot import Pilot

from r1chat.config.file import Config
from r1chat.config.settings import Settings
from r1chat.history.store import History
from r1chat.launch.engines import open_engine
from r1chat.session.runner import in_thread
from r1chat.tui.app import ChatApp
from tests.fixtures.scripted import ScriptedModel
from tests.tui.pilot import ready, settle

Snap = Callable[..., bool]


@pytest.fixture(autouse=True)
def _fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = itertools.count()
    monkeypatch.setattr(
        "r1chat.core.turn.time", SimpleNamespace(perf_counter=lambda: next(ticks) * 0.01)
    )


@pytest.fixture(autouse=True)
def _in_model_dir(monkeypatch: pytest.MonkeyPatch, answer_model: ScriptedModel) -> None:
    monkeypatch.chdir(answer_model.path.parent)  # so the model is a short, fixed path


def chat(model: ScriptedModel) -> ChatApp:
    clock = itertools.count(1000.0)
    history = History(clock=lambda: 1_700_000_000.0 + next(clock))
    # The engine runs on a thread here (not in its child process), so the fixed clock
    # above is the one the reply is timed with.
    return ChatApp(
        Settings(model=model.path.name, threads=1),
        config=Config.load(),
        history=history,
        runner=in_thread(open_engine),
    )


def asking(*prompts: str, then: Callable[[Pilot], object] | None = None):
    async def run_before(pilot: Pilot) -> None:
        app = await ready(pilot)
        for prompt in prompts:
            await app.chat.send(prompt)
            await settle(pilot)
        if then is not None:
            result = then(pilot)
            if hasattr(result, "__await__"):
                await result  # type: ignore[misc]
        await pilot.pause()

    return run_before


def test_finished_turn_side_by_side(snap_compare: Snap, answer_model: ScriptedModel) -> None:
    assert snap_compare(
        chat(answer_model), terminal_size=(160, 48), run_before=asking("What is 2 + 2?")
    )


def test_finished_turn_stacked_80x24(snap_compare: Snap, answer_model: ScriptedModel) -> None:
    assert snap_compare(
        chat(answer_model), terminal_size=(80, 24), run_before=asking("What is 2 + 2?")
    )


def test_collapsed(snap_compare: Snap, answer_model: ScriptedModel) -> None:
    async def collapse(pilot: Pilot) -> None:
        await pilot.press("ctrl+t")

    run_before = asking("What is 2 + 2?", "And 3 + 3?", then=collapse)
    assert snap_compare(chat(answer_model), terminal_size=(120, 30), run_before=run_before)


def test_sidebar(snap_compare: Snap, answer_model: ScriptedModel) -> None:
    async def new_chat_then_sidebar(pilot: Pilot) -> None:
        app = pilot.app
        assert isinstance(app, ChatApp)
        await pilot.press("ctrl+n")
        await app.chat.send("Second chat: what is 2 + 2?")
        await settle(pilot)
        await pilot.press("ctrl+s")

    assert snap_compare(
        chat(answer_model),
        terminal_size=(120, 30),
        run_before=asking("First chat", then=new_chat_then_sidebar),
    )


def test_settings(snap_compare: Snap, answer_model: ScriptedModel) -> None:
    def open_settings(pilot: Pilot) -> None:
        app = pilot.app
        assert isinstance(app, ChatApp)
        app.chat.open_settings()

    assert snap_compare(
        chat(answer_model), terminal_size=(100, 34), run_before=asking(then=open_settings)
    )


def test_control_codes_are_never_drawn(snap_compare: Snap, answer_model: ScriptedModel) -> None:
    """A conversation whose title, prompt, reasoning and answer hold a window title, a
    screen clear and a clipboard write, reopened: drawn as text, the codes left out."""
    hostile = "x\x1b]0;PWNED\x07\x1b[2J\x1b]52;c;Y2xpcGJvYXJk\x07"
    app = chat(answer_model)
    cid = app.history.new_conversation(f"title {hostile}")
    app.history.add_message(cid, "user", f"question {hostile}")
    app.history.add_message(
        cid,
        "assistant",
        f"answer {hostile}",
        reasoning=f"thought {hostile}",
        model=f"model {hostile}",
    )
    app.chat._initial_conversation = cid  # (as `r1chat chat --conversation N`)

    async def open_sidebar(pilot: Pilot) -> None:
        await pilot.press("ctrl+s")
        screen = pilot.app.export_screenshot()
        assert "PWNED" not in screen and "Y2xpcGJvYXJk" not in screen and "\x1b" not in screen

    assert snap_compare(app, terminal_size=(120, 30), run_before=asking(then=open_sidebar))
