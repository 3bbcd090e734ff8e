"""Driving the real chat app with Textual's Pilot: start it on a model, wait for it, ask."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from r1chat.config.file import Config
from r1chat.config.settings import Settings
from r1chat.history.store import History
from r1chat.mcp.client import McpHub
from r1chat.session.runner import in_child_process
from r1chat.tui.app import ChatApp
from r1chat.tui.widgets.turns import AssistantTurn
from tests.fixtures.scripted import ScriptedModel

SIZE = (160, 48)


def run_async(test: Callable[..., Coroutine[object, object, None]]) -> Callable[..., None]:
    """Run an async test in its own event loop (no pytest asyncio plugin needed)."""

    @functools.wraps(test)
    def wrapper(*args: object, **kwargs: object) -> None:
        asyncio.run(test(*args, **kwargs))

    return wrapper


def make_app(
    model: ScriptedModel | Path | str,
    history: History | None = None,
    config: Config | None = None,
    mcp: McpHub | None = None,
    **settings: Any,
) -> ChatApp:
    path = str(model.path if isinstance(model, ScriptedModel) else model)
    settings.setdefault("threads", 1)  # the scripted models need no more; 2 cores are shared
    return ChatApp(
        Settings(model=path, **settings),
        config=config if config is not None else Config.load(),
        history=history if history is not None else History(),
        runner=in_child_process,
        mcp=mcp,
    )


async def wait_for(pilot: Pilot, cond: Callable[[], object], timeout: float = 30.0) -> None:
    """Poll `cond` between frames until it holds (AssertionError after `timeout` s)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {cond}")
        await pilot.pause(0.02)


async def ready(pilot: Pilot) -> ChatApp:
    app = pilot.app
    assert isinstance(app, ChatApp)
    await wait_for(
        pilot, lambda: app.chat.session.info is not None or app.chat.session.load_error is not None
    )
    return app


async def settle(pilot: Pilot) -> None:
    """Wait until no reply runs and every queued event reached the widgets."""
    app = pilot.app
    assert isinstance(app, ChatApp)
    await wait_for(
        pilot, lambda: app.chat.session.current is None and app.chat.inbox.outstanding == 0
    )
    await app.chat.drain_now()
    await pilot.pause()


async def ask(pilot: Pilot, text: str) -> AssistantTurn:
    """Type a prompt, press Enter, wait for the whole reply; the reply's turn."""
    app = await ready(pilot)
    app.chat.prompt.insert(text)
    await pilot.press("enter")
    await settle(pilot)
    return app.chat.transcript.query(AssistantTurn).last()
