"""`r1chat` and `python -m r1chat`: the commands of both front ends, in one parser."""

from __future__ import annotations

from collections.abc import Sequence

from r1chat.cli import ask, completion, doctor, evaluate, history, models
from r1chat.cli.main import run
from r1chat.serve import agents
from r1chat.serve import command as serve
from r1chat.tui import command as chat

COMMANDS = (chat, ask, models, history, serve, agents, evaluate, doctor, completion)
"""The first is the default command (`r1chat -m r1:7b` opens the chat)."""


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMANDS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
