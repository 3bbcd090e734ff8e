"""The command line: parse, dispatch to a command, turn errors into one line and an exit code.

The commands themselves come from both front ends (`r1chat.__main__` lists them). Only
stdlib and r1chat's light modules are imported here, so `--help` and `--version` start
fast; each command imports llama.cpp or Textual when it runs.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import ModuleType

from r1chat import __version__
from r1chat.core.errors import R1ChatError, UsageError
from r1chat.core.printable import one_line

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


def _with_default_command(argv: list[str], names: Iterable[str]) -> list[str]:
    """`r1chat -m X` means `r1chat chat -m X` (the first command)."""
    names = list(names)
    if argv and (argv[0] in names or argv[0] in ("-h", "--help", "--version")):
        return argv
    return [names[0], *argv]


def _needed(commands: Mapping[str, str], argv: list[str]) -> list[ModuleType]:
    """The command modules the parser needs for `argv`: the named command's alone (a
    command starts without importing the others), none for `--version`, else all (help,
    completion)."""
    if argv[0] == "--version":
        return []
    names = [argv[0]] if argv[0] in commands and argv[0] != "completion" else list(commands)
    return [importlib.import_module(commands[name]) for name in names]


def run(commands: Mapping[str, str], argv: Sequence[str] | None = None) -> int:
    """Parse `argv` for `commands` (name: the module that registers it) and run it."""
    if sys.stdout is None:  # started with stdout closed (`>&-`): nothing could be said
        if sys.stderr is not None:
            print(
                "error: standard output is closed (>&-): nothing could be written", file=sys.stderr
            )
        return 1
    if sys.stderr is None:  # (stderr closed, `2>&-`: its lines go nowhere, the rest works)
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    words = _with_default_command(list(sys.argv[1:] if argv is None else argv), commands)
    args = build_parser(_needed(commands, words)).parse_args(words)
    return outcome(lambda: _command(args))


def _command(args: argparse.Namespace) -> int:
    _check_text(args)
    return int(args.func(args) or 0)


def outcome(work: Callable[[], int]) -> int:
    """`work()`'s exit status (its output flushed), its errors turned into one line and a
    status."""
    try:
        code = work()
        sys.stdout.flush()
        return code
    except R1ChatError as e:
        print(f"error: {one_line(str(e))}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`r1chat ask ... | head`): not an error of ours.
        _silence_stdout()
        return 0
    except OSError as e:  # (after BrokenPipeError, which is one)
        if e.errno not in _FULL or e.filename is not None:
            raise
        print(f"error: cannot write the output: {e.strerror}", file=sys.stderr)  # stdout
        _silence_stdout()
        return 1


_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)
"""Why a write to stdout fails but for a reader that went away (`r1chat ask > /dev/full`)."""

_TEXT_OPTIONS = {"prompt": "the prompt", "system": "--system"}
"""Arguments that are text for the model (paths may hold any bytes; these must be UTF-8)."""


def _check_text(args: argparse.Namespace) -> None:
    """Refuse text the terminal passed in another encoding (Python keeps undecodable bytes
    as lone surrogates, which no tokenizer can take)."""
    for dest, name in _TEXT_OPTIONS.items():
        value = getattr(args, dest, None)
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and (bad := _undecodable(text)):
                raise UsageError(
                    f"{name} is not valid UTF-8 (bytes {bad}); set the terminal to UTF-8, "
                    "or pipe the text in"
                )


def _undecodable(text: str) -> str:
    """The bytes of `text` that were not UTF-8, as `ff fe`, or "" when all were."""
    raw = [ord(c) - 0xDC00 for c in text if 0xDC80 <= ord(c) <= 0xDCFF]
    return " ".join(f"{b:02x}" for b in raw[:4]) + (" …" if len(raw) > 4 else "")


def _silence_stdout() -> None:
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
