"""The command line: parse, dispatch to a command, turn errors into one line and an exit code.

The commands themselves come from both front ends (`r1chat.__main__` lists them). Only
stdlib and r1chat's light modules are imported here, so `--help` and `--version` start
fast; each command imports llama.cpp or Textual when it runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from r1chat import __version__
from r1chat.core.errors import R1ChatError

EXIT_INTERRUPTED = 130


def build_parser(commands: Sequence[ModuleType]) -> argparse.ArgumentParser:
    """The parser for `commands`: modules with `register(subparsers)`; the first one is
    what runs without a command name."""
    parser = argparse.ArgumentParser(
        prog="r1chat",
        description="Run DeepSeek-R1 distills locally, with their reasoning beside the answer.",
        epilog="Run `r1chat COMMAND --help` for a command's options. "
        "With no command, r1chat opens the chat.",
    )
    parser.add_argument("--version", action="version", version=f"r1chat {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for module in commands:
        module.register(sub)
    parser.set_defaults(root_parser=parser)  # for `r1chat completion`
    return parser


def _with_default_command(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """`r1chat -m X` means `r1chat chat -m X`."""
    known = {"-h", "--help", "--version"}
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if argv and (argv[0] in sub.choices or argv[0] in known):
        return argv
    return [next(iter(sub.choices)), *argv]


def run(commands: Sequence[ModuleType], argv: Sequence[str] | None = None) -> int:
    parser = build_parser(commands)
    args = parser.parse_args(
        _with_default_command(list(sys.argv[1:] if argv is None else argv), parser)
    )
    try:
        return int(args.func(args) or 0)
    except R1ChatError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`r1chat ask ... | head`): not an error of ours.
        _silence_stdout()
        return 0


def _silence_stdout() -> None:
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
