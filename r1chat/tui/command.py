"""`r1chat chat` (the default command): the Textual chat UI.

Textual is imported inside `run`, so `r1chat --help` and the other commands start fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from r1chat.config.options import add_conversation_options, add_run_options, add_tool_options
from r1chat.core.errors import R1ChatError, UsageError

if TYPE_CHECKING:
    from r1chat.history.store import History
    from r1chat.mcp.client import McpHub


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "chat",
        help="open the chat UI (the default command)",
        description="Chat with a model: its reasoning streams beside the answer. "
        "Conversations are saved as they stream; ctrl+s lists them, ctrl+p opens settings.",
    )
    add_conversation_options(p, "reopen")
    add_run_options(p)
    add_tool_options(p, ask=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not sys.stdin.isatty() or not sys.stdout.isatty():
        raise UsageError("the chat needs a terminal; for pipes and scripts use `r1chat ask`")
    from r1chat.config.file import Config
    from r1chat.config.settings import resolve
    from r1chat.session.dialogue import Dialogue, with_its_model

    config = Config.load()
    settings = resolve(config, vars(args))
    mcp = _mcp_hub(args)
    history = _open_history()
    conversation_id: int | None = args.conversation
    if conversation_id is not None:
        history.conversation(conversation_id)  # "no conversation N" before the UI opens
    elif args.resume:
        latest = history.list_conversations(limit=1)
        conversation_id = latest[0].id if latest else None
    if conversation_id is not None:  # reopened with the model it used, unless -m says
        explicit = bool(args.model or args.endpoint)
        settings = with_its_model(settings, Dialogue.load(history, conversation_id), explicit)

    from r1chat.session.runner import in_child_process
    from r1chat.tui.app import ChatApp

    app = ChatApp(
        settings,
        config=config,
        history=history,
        conversation_id=conversation_id,
        runner=in_child_process,
        mcp=mcp,
    )
    try:
        app.run()
    finally:
        history.close()
    if app.return_code not in (None, 0):
        return int(app.return_code or 1)
    return 0


def _mcp_hub(args: argparse.Namespace) -> McpHub | None:
    """The MCP servers of `--mcp FILE`, else of `mcp.json` in the config folder (if any)."""
    from pathlib import Path

    from r1chat.mcp.client import McpHub
    from r1chat.mcp.config import load

    if args.no_mcp:
        return None
    try:
        specs = load(Path(args.mcp) if args.mcp else None, required=args.mcp is not None)
    except UsageError as e:
        if args.mcp is not None:
            raise
        broken = McpHub([])  # the optional default file: the chat opens, and says why
        broken.problems.append(f"{e} (the chat goes on without MCP tools)")
        return broken
    return McpHub(specs) if any(not s.disabled for s in specs) else None


def _open_history() -> History:
    """The history; a damaged file is offered to be recovered (rows copied into a fresh
    file; the damaged one kept beside it)."""
    from r1chat.history.damage import DamagedHistory
    from r1chat.history.recover import recover
    from r1chat.history.store import History

    try:
        return History()
    except DamagedHistory as e:
        print(f"{e}.", file=sys.stderr)
        answer = input("Recover what it still holds into a new history now? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise R1ChatError("the chat needs its history; the damaged file is untouched") from None
        print(recover(e.path), file=sys.stderr)
        return History()
