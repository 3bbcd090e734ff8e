"""`r1chat` and `python -m r1chat`: the commands of both front ends, in one parser."""

from __future__ import annotations

from collections.abc import Sequence

from r1chat.cli.main import run

COMMANDS = {
    "chat": "r1chat.tui.command",
    "ask": "r1chat.cli.ask",
    "models": "r1chat.cli.models",
    "history": "r1chat.cli.history",
    "serve": "r1chat.serve.command",
    "launch": "r1chat.serve.agents",
    "eval": "r1chat.cli.evaluate",
    "doctor": "r1chat.cli.doctor",
    "completion": "r1chat.cli.completion",
}
"""Each command's name and the module that registers it (`register(subparsers)`), imported
only when its command runs or the whole parser is asked for (help, completion). The first
is the default command (`r1chat -m r1:7b` opens the chat)."""


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMANDS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
