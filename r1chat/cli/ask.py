"""`r1chat ask`: one question, one answer; made for pipes and scripts.

Every ask is saved in the history (a conversation marked `ask`, unless `--no-log` or
`[ask] log = false`), as it streams, so `-c` can continue it and `r1chat history` finds
it; the chat's sidebar lists it too.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from r1chat.config.options import add_conversation_options, add_run_options, add_tool_options
from r1chat.core.errors import R1ChatError, UsageError

if TYPE_CHECKING:
    from r1chat.cli.ask_input import File, Prompt
    from r1chat.config.settings import Settings
    from r1chat.core.events import Done, Event
    from r1chat.core.request import Request
    from r1chat.engine.base import Engine
    from r1chat.history.store import History
    from r1chat.session.dialogue import Dialogue
    from r1chat.session.tool_rounds import Round

EXIT_INTERRUPTED = 130
EXIT_NO_ANSWER = 3
"""The reply ended (max tokens, the context, a loop, an error) before any answer."""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "ask",
        help="answer one prompt and exit (reads stdin too; good in pipes)",
        description="Answer one prompt. Text piped on stdin is added after the prompt; "
        "files given with -f go before it. stdout carries the answer only, unless "
        "--thinking show. Every ask is saved in the history (see --no-log).",
        epilog="exit status: 0 answered (a cut answer says so on stderr); 1 error; 2 bad "
        f"usage; {EXIT_NO_ANSWER} no answer (the reply was cut while reasoning: max tokens, "
        f"the context, a loop); {EXIT_INTERRUPTED} interrupted (Ctrl-C)",
    )
    p.add_argument("prompt", nargs="*", help="the prompt (joined with spaces)")
    p.add_argument(
        "-f",
        "--file",
        dest="files",
        action="append",
        default=[],
        metavar="FILE",
        help="add FILE's text to the prompt, with its name (repeatable; - for stdin)",
    )
    p.add_argument(
        "--thinking",
        choices=("auto", "show", "hide", "stderr"),
        default="auto",
        help="where the reasoning goes (auto: shown on a terminal, left out in a pipe)",
    )
    p.add_argument(
        "--thinking-file", metavar="PATH", help="also write the reasoning to PATH as it streams"
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON object at the end")
    out.add_argument(
        "--jsonl", action="store_true", help="print one JSON object per event as it happens"
    )
    p.add_argument("--dry-run", action="store_true", help="print the prompt and exit")
    shape = p.add_mutually_exclusive_group()
    shape.add_argument(
        "--schema",
        metavar="FILE|JSON",
        help="the answer is JSON under this JSON schema (the reasoning stays free)",
    )
    shape.add_argument("--json-object", action="store_true", help="the answer is a JSON object")
    add_conversation_options(p, "continue")
    p.add_argument(
        "--no-log",
        dest="log",
        action="store_false",
        default=None,
        help="do not save this ask in the history",
    )
    add_run_options(p)
    add_tool_options(p, ask=True)
    p.set_defaults(func=run)


def _continued(args: argparse.Namespace, history: History) -> Dialogue:
    """The conversation `-c` / `--conversation` names, loaded."""
    from r1chat.session.dialogue import Dialogue

    cid: int | None = args.conversation
    if cid is None:
        latest = history.list_conversations(limit=1)
        if not latest:
            raise UsageError("-c: there is no saved conversation yet")
        cid = latest[0].id
    history.conversation(cid)  # "no conversation N" if there is none
    return Dialogue.load(history, cid)


def _check_fit(engine: Engine, request: Request, files: list[File]) -> None:
    """Refuse files that leave the reply no room, naming them (local models only: a
    server's prompt has no token count here)."""
    from dataclasses import replace

    from r1chat.core.messages import Message
    from r1chat.core.request import prompt_problem

    if not files or not engine.info.caps.counts:
        return
    n_ctx = engine.info.n_ctx
    tokens = engine.count_prompt(request)
    if not prompt_problem(tokens, n_ctx):
        return

    def size(f: File) -> int:
        return engine.count_prompt(replace(request, messages=(Message("user", f.block),)))

    sizes = [(f.name, size(f)) for f in files]
    named = ", ".join(f"{name} ({n:,} tokens)" for name, n in sorted(sizes, key=lambda x: -x[1]))
    raise UsageError(
        f"the files do not fit the context: {named}; the prompt would be {tokens:,} tokens "
        f"and the context holds {n_ctx:,} (raise --ctx or pass less)"
    )


def run(args: argparse.Namespace) -> int:
    """In a child process (`crashguard`): a crash inside llama.cpp is then one line."""
    from r1chat.cli.crashguard import guarded
    from r1chat.cli.main import outcome

    return guarded(lambda: outcome(lambda: _run(args)))


def _run(args: argparse.Namespace) -> int:
    from r1chat.config.file import Config
    from r1chat.config.settings import resolve

    config = Config.load()
    settings = resolve(config, vars(args))
    log = args.log if args.log is not None else config.values.ask_log
    continuing = args.resume or args.conversation is not None
    history: History | None = None
    if continuing:  # the conversation is needed, for its model and earlier turns
        history = _history()
    elif log and not args.dry_run:
        try:
            history = _history()
        except R1ChatError as e:  # stdout is what matters in a pipe: say it, go on
            print(f"warning: this ask is not saved in the history: {e}", file=sys.stderr)
    try:
        conversation = _continued(args, history) if continuing and history else None
        if conversation is not None:
            from r1chat.session.dialogue import with_its_model

            settings = with_its_model(settings, conversation, bool(args.model or args.endpoint))
        return _ask(args, settings, history if log else None, conversation)
    finally:
        if history is not None:
            history.close()


def _ask(
    args: argparse.Namespace,
    settings: Settings,
    history: History | None,
    conversation: Dialogue | None,
) -> int:
    """Read the prompt, open the model, then print the prompt (`--dry-run`) or stream the
    reply to the output, the reasoning file and the history (when `history` is given)."""
    import json
    import signal
    from dataclasses import replace

    from r1chat.cli.ask_input import read_prompt, read_schema
    from r1chat.cli.ask_output import ReasoningFile, choose_output
    from r1chat.cli.ask_tools import open_hub, run_rounds
    from r1chat.cli.crashguard import one_press
    from r1chat.core.events import Done
    from r1chat.core.messages import Message
    from r1chat.core.request import Control, input_limit
    from r1chat.core.turn import run_turn
    from r1chat.host.fitting import fit_request

    if args.allow_tool and args.mcp is None:
        raise UsageError("--allow-tool needs --mcp")
    prompt = read_prompt(args.prompt, args.files, input_limit(settings.n_ctx))
    if (schema := read_schema(args.schema, args.json_object)) is not None:
        settings = replace(settings, sampling=replace(settings.sampling, schema=schema))
    keep_thinking = args.thinking_file and not args.dry_run
    thinking_file = ReasoningFile(args.thinking_file) if keep_thinking else None
    if history is not None and not args.dry_run:
        _import_meanwhile(*_Log.NEEDS)
    engine = _open(settings)
    context = conversation.context() if conversation is not None else ()
    request = settings.request((*context, Message("user", prompt.text)))
    _check_fit(engine, request, prompt.files)
    request, left_out = fit_request(engine, request, settings.guards, settings.overflow)
    if left_out:
        print(
            f"note: the {left_out} oldest turn{'s' if left_out != 1 else ''} of the "
            "conversation were left out of the prompt (over the context; the history "
            "keeps them)",
            file=sys.stderr,
        )
    if args.dry_run:
        rendered = engine.render(request)
        if args.json:
            obj = {
                "model": engine.info.model,
                "prompt": rendered.text,
                "tokens": list(rendered.tokens),
            }
            print(json.dumps(obj, ensure_ascii=False))
        else:
            sys.stdout.write(rendered.text + "\n")
        return 0

    structured = settings.sampling.schema is not None
    sinks: list[Any] = [choose_output(args.thinking, args.json, args.jsonl, structured)]
    if thinking_file is not None:
        sinks.append(thinking_file)
    if history is not None:
        sinks.append(_Log(history, conversation, prompt, engine.info.model, settings))
    control = Control()
    interrupted = False
    hub = open_hub(args.mcp, args.allow_tool)
    log = next((s for s in sinks if isinstance(s, _Log)), None)

    def events() -> Iterator[Event]:
        if hub is None:
            return run_turn(engine, request, control, settings.guards)
        new_round = log.new_round if log is not None else (lambda rounds: None)
        allowed = set(args.allow_tool)
        return run_rounds(engine, request, control, settings, hub, allowed, new_round)

    def on_sigint(signum: int, frame: Any) -> None:
        nonlocal interrupted
        if interrupted:  # a second Ctrl-C: stop without waiting
            raise KeyboardInterrupt
        interrupted = True
        control.cancel()

    previous = signal.signal(signal.SIGINT, one_press(on_sigint))
    answered = False
    try:
        for event in events():
            if isinstance(event, Done):
                event.stats.turns_left_out = left_out
                answered = bool(event.content.strip())
                for sink in sinks:
                    sink.finish(event, engine.info.model)
            else:
                for sink in sinks:
                    sink.event(event)
    finally:
        signal.signal(signal.SIGINT, previous)
        if hub is not None:
            hub.close()
        _leave(engine)
    if interrupted:
        return EXIT_INTERRUPTED
    return 0 if answered else EXIT_NO_ANSWER


def _open(settings: Settings) -> Engine:
    """The engine, having told the crash guard what it loads (and kept a crash's Python
    stack in llama.cpp's log); notes about it (a log that cannot be written) said once."""
    import faulthandler

    from r1chat.cli.crashguard import tell
    from r1chat.config import paths
    from r1chat.launch.engines import open_engine

    log = paths.llama_log_file()
    with contextlib.suppress(OSError):
        log.parent.mkdir(parents=True, exist_ok=True)
        _kept["faults"] = log.open("a", encoding="utf-8")
        faulthandler.enable(file=_kept["faults"])
    tell(
        model=settings.model or "the default model",
        log=str(log),
        repack=settings.repack != "off",
        gpu_layers=settings.gpu_layers,
    )
    engine = open_engine(settings)
    info = engine.info
    tell(
        model=info.model,
        repack=info.repack and info.caps.in_process,
        gpu_layers=info.gpu_layers,
    )
    for note in info.notes:
        print(f"warning: {note}", file=sys.stderr)
    return engine


def _import_meanwhile(*modules: str) -> None:
    """Import `modules` on a thread of its own: what is needed once the model is loaded,
    imported while llama.cpp loads it (on one core, the GIL released)."""
    import importlib
    import threading

    def run() -> None:
        for module in modules:
            importlib.import_module(module)

    threading.Thread(target=run, name="r1chat-imports", daemon=True).start()


def _leave(engine: Engine) -> None:
    """In the crash guard's child, which ends right after the reply: let go of a local
    model's lock now (`models rm` may follow at once) and leave its memory to the
    process's end, freeing nothing first (a model's caches take tens of milliseconds)."""
    from r1chat.cli.crashguard import forked

    if forked() and (let_go := getattr(engine, "let_go", None)) is not None:
        _kept["engine"] = engine
        let_go()


_kept: dict[str, Any] = {}  # what outlives `_ask`: faulthandler's file, the engine (`_leave`)


def _history() -> History:
    from r1chat.history.store import History

    return History()


class _Log:
    """Saves the ask to History as it streams (about once a second, then completely).

    The rows are made at the first event: a prompt refused before any (too long, say)
    leaves no turn without a reply behind.
    """

    NEEDS = ("r1chat.host.saver", "r1chat.session.dialogue")
    """The modules it imports at the first event."""

    def __init__(
        self,
        history: History,
        conversation: Dialogue | None,
        prompt: Prompt,
        model: str,
        settings: Settings,
    ) -> None:
        self.history, self.conversation = history, conversation
        self.prompt, self.model, self.settings = prompt, model, settings
        self.saver: Any = None
        self.backlog: Any = None
        self.failed = False
        self.exchange: Any = None

    def _start(self) -> Any:
        from r1chat.host.saver import Backlog, Saver
        from r1chat.session.dialogue import Dialogue

        history = self.history
        self.conversation = self.conversation or Dialogue(history, source="ask")
        exchange = self.conversation.add_prompt(
            self.prompt.text, self.model, self.settings, self.prompt.title
        )
        message_id = self.conversation.start_reply(exchange, self.model, self.settings)
        self.exchange = exchange

        def warn(item: tuple[int, Any]) -> None:
            print(f"warning: {item[1].message}", file=sys.stderr)

        self.backlog = Backlog(history, warn)
        return Saver(self.backlog, message_id)

    def _started(self) -> bool:
        """Make the rows on first use; a history that fails (disk full, say) is one
        warning, and the ask goes on unsaved."""
        if self.saver is None and not self.failed:
            try:
                self.saver = self._start()
            except R1ChatError as e:
                self.failed = True
                print(f"warning: this ask is not saved in the history: {e}", file=sys.stderr)
        return self.saver is not None

    def event(self, event: Event) -> None:
        if self._started():
            self.saver.feed(event)

    def new_round(self, rounds: list[Round]) -> None:
        """A round of tool calls ended: keep it; the reply's text starts again."""
        from r1chat.host.saver import Saver

        if not self._started():
            return
        assert self.conversation is not None
        self.exchange.rounds = list(rounds)
        try:
            self.conversation.save_rounds(self.exchange, cleared=True)
        except R1ChatError as e:
            print(f"warning: a round of tool calls was not saved: {e}", file=sys.stderr)
        self.saver = Saver(self.backlog, self.exchange.reply_id)

    def finish(self, done: Done, model: str) -> None:
        if self._started():
            self.saver.finish(done)
            self.backlog.give_up()  # a last try; what still fails is said (stdout has it)
