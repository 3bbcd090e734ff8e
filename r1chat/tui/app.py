"""The chat app: start-up, the command palette and quitting. The chat itself is
`ChatScreen` (r1chat.tui.screens.chat), the app's default screen; the model manager and
the settings open over it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path, PurePath
from typing import ClassVar

import platformdirs
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from r1chat.config.file import Config
from r1chat.config.settings import Settings
from r1chat.history.store import History
from r1chat.mcp.client import McpHub
from r1chat.session.runner import RunnerFactory
from r1chat.tui.screens.chat import ChatScreen
from r1chat.tui.screens.settings import FIELDS

END_S = 5.0
"""How long a SIGTERM's quit may take before the chat ends without it."""

TUI = Path(__file__).parent


class ChatApp(App[None]):
    CSS_PATH: ClassVar[list[str | PurePath]] = [
        TUI / "screens" / "chat.tcss",
        TUI / "screens" / "settings.tcss",
        TUI / "widgets" / "dialogs.tcss",
    ]
    TITLE = "r1chat"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        # not a priority binding (Textual's is): keys typed before it reach the input first,
        # so that quitting keeps the whole draft
        Binding("ctrl+q", "quit", "Quit", show=False),
    ]

    def __init__(
        self,
        settings: Settings,
        *,
        config: Config | None = None,
        history: History | None = None,
        conversation_id: int | None = None,
        runner: RunnerFactory,
        clock: Callable[[], float] = time.monotonic,
        mcp: McpHub | None = None,
    ) -> None:
        """`runner` makes what runs the model (`tui/command.py`: a child process); `mcp`,
        the servers whose tools replies may call."""
        super().__init__()
        self.config = config if config is not None else Config.load()
        self.history = history if history is not None else History()
        self.chat = ChatScreen(
            settings,
            config=self.config,
            history=self.history,
            conversation_id=conversation_id,
            runner=runner,
            clock=clock,
            mcp=mcp,
        )

    def get_default_screen(self) -> Screen[None]:
        return self.chat

    def deliver_screenshot(
        self, filename: str | None = None, path: str | None = None, time_format: str | None = None
    ) -> str | None:
        """Save an SVG of the screen (the palette's "Screenshot") in the Downloads folder,
        else the current one, and say where it went, or why it could not be saved."""
        downloads = Path(platformdirs.user_downloads_dir())
        folder = Path(path) if path else downloads if downloads.is_dir() else Path.cwd()
        try:
            saved = self.save_screenshot(filename, str(folder), time_format)
        except OSError as e:
            self.notify(
                f"Could not save it in {folder}: {e.strerror or e}",
                title="Screenshot",
                severity="error",
                timeout=8,
            )
            return None
        self.notify(f"Saved to {saved}", title="Screenshot", timeout=6)
        return saved

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        chat = self.chat
        yield SystemCommand(
            "Settings", "Sampling, context, system prompt, reasoning", chat.open_settings
        )
        for name, label in FIELDS.items():
            yield SystemCommand(
                f"Settings: {label}",
                f"Change the {label.lower()}",
                lambda name=name: chat.open_settings(name),
                discover=False,
            )
        yield SystemCommand("New chat", "Start a new conversation (ctrl+n)", chat.action_new_chat)
        yield SystemCommand(
            "Regenerate", "Answer the last prompt again (ctrl+r)", chat.action_regenerate
        )
        yield SystemCommand(
            "Toggle reasoning",
            "Show or collapse every reasoning pane (ctrl+t)",
            chat.action_toggle_reasoning,
        )
        yield SystemCommand(
            "Chats", "Show or hide the conversations sidebar (ctrl+s)", chat.action_toggle_sidebar
        )
        yield SystemCommand(
            "Copy last answer",
            "Copy the last answer, without reasoning (ctrl+g)",
            chat.action_copy_answer,
        )
        yield SystemCommand(
            "Models: manage…",
            "Pull, delete, set the default, switch the chat's model (ctrl+o)",
            chat.action_models,
        )
        for spec, up, count in chat.mcp.servers() if chat.mcp is not None else ():
            on = spec.name not in chat.mcp.off  # type: ignore[union-attr]
            yield SystemCommand(
                f"Tools: turn {'off' if on else 'on'} {spec.name}",
                f"{count} tools · {spec.where}" if up else f"not running · {spec.where}",
                lambda name=spec.name: chat.toggle_server(name),
            )
        if (cid := chat.session.dialogue.id) is not None:
            yield SystemCommand(
                "Rename this chat",
                "Give this conversation a title",
                lambda: chat.sidebar.rename(cid),
            )
            yield SystemCommand(
                "Delete this chat",
                "Delete this conversation",
                lambda: chat.sidebar.confirm_delete(cid),
            )

    def on_mount(self) -> None:
        if self.is_headless:
            return
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, self._end_now, signal.SIGHUP)
            loop.add_signal_handler(signal.SIGTERM, self._told_to_end)

    def _told_to_end(self) -> None:
        """Asked to end (SIGTERM): keep the draft at once, then quit as ctrl+q does; and
        if that has not ended the chat in `END_S`, end it as a hang-up does."""
        self.chat.keep_draft()
        self.run_worker(self.action_quit(), exclusive=True, group="quit")
        asyncio.get_running_loop().call_later(END_S, self._end_now, signal.SIGTERM)

    def _end_now(self, sig: int) -> None:
        """The terminal is gone (SIGHUP), or a quit did not end: nothing can be drawn or
        restored, so keep the draft, stop the reply and the model (the reply is saved as
        stopped), and end by the signal, without Textual's shutdown (which waits on
        writes to the terminal)."""
        self.chat.keep_draft()
        self.chat.session.stop()
        self.chat.session.runner.stop(3.0)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)

    async def action_quit(self) -> None:
        """Stop the reply (it is saved as stopped), keep an unsent draft, close the model,
        exit."""
        self.chat.session.stop()
        if (problem := self.chat.keep_draft()) is not None:
            self.notify(problem, severity="error", timeout=5)
            await asyncio.sleep(2)  # long enough to be read
        await asyncio.to_thread(self.chat.session.runner.stop, 3.0)
        self.exit()
