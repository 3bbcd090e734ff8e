"""`r1chat ask`: one question, one answer; made for pipes and scripts."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any

from r1chat.config.options import add_run_options, settings_from_args
from r1chat.core.errors import UsageError

EXIT_INTERRUPTED = 130


def register(sub: Any) -> None:
    p = sub.add_parser(
        "ask",
        help="answer one prompt and exit (reads stdin too; good in pipes)",
        description="Answer one prompt. Text piped on stdin is added after the prompt. "
        "stdout carries the answer only, unless --thinking show.",
    )
    p.add_argument("prompt", nargs="*", help="the prompt (joined with spaces)")
    p.add_argument(
        "--thinking",
        choices=("auto", "show", "hide", "stderr"),
        default="auto",
        help="where the reasoning goes (auto: shown on a terminal, left out in a pipe)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.add_argument("--dry-run", action="store_true", help="print the prompt and exit")
    add_run_options(p)
    p.set_defaults(func=run)


def read_prompt(words: list[str]) -> str:
    """The prompt words, then a blank line, then stdin when it is not a terminal."""
    prompt = " ".join(words).strip()
    piped = ""
    if not sys.stdin.isatty():
        piped = sys.stdin.buffer.read().decode("utf-8", errors="replace")
    text = "\n\n".join(part for part in (prompt, piped.strip("\n")) if part.strip())
    if not text:
        raise UsageError('no prompt: give one as arguments or on stdin, e.g. r1chat ask "Hi"')
    return text


def run(args: argparse.Namespace) -> int:
    from r1chat.cli.ask_output import choose_output
    from r1chat.core.events import Done
    from r1chat.core.messages import Message
    from r1chat.core.request import Control, Request
    from r1chat.core.turn import run_turn
    from r1chat.engine.factory import open_engine

    settings = settings_from_args(args)
    text = read_prompt(args.prompt)
    engine = open_engine(settings)
    request = Request(
        messages=(Message("user", text),),
        sampling=settings.sampling,
        system=settings.system,
        think=settings.think,
        math=settings.math,
    )
    if args.dry_run:
        prompt = engine.render(request)
        if args.json:
            obj = {"model": engine.info.model, "prompt": prompt.text, "tokens": list(prompt.tokens)}
            print(json.dumps(obj, ensure_ascii=False))
        else:
            sys.stdout.write(prompt.text + "\n")
        return 0

    output = choose_output(args.thinking, args.json)
    control = Control()
    interrupted = False

    def on_sigint(signum: int, frame: Any) -> None:
        nonlocal interrupted
        if interrupted:  # a second Ctrl-C: stop without waiting
            raise KeyboardInterrupt
        interrupted = True
        control.cancel()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        for event in run_turn(engine, request, control, settings.guards):
            if isinstance(event, Done):
                output.finish(event, engine.info.model)
            else:
                output.event(event)
    finally:
        signal.signal(signal.SIGINT, previous)
    return EXIT_INTERRUPTED if interrupted else 0
