"""`r1chat history`: list, show, export, delete and search saved conversations.

Only argparse is imported at startup; SQLite (r1chat.history.store) and Rich are imported when
a command runs. Rich draws the output only when stdout is a terminal; piped output is
plain text (or JSON with `--json`).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from r1chat.core.errors import R1ChatError, UsageError
from r1chat.core.printable import one_line, printable

if TYPE_CHECKING:
    from rich.console import Console

    from r1chat.history.records import Branch, Conversation, StoredMessage
    from r1chat.history.store import History

# Snippet markers unlikely to appear in text, swapped for a highlight on a terminal.
_MARK = ("\x02", "\x03")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "history",
        help="list, show, export, delete and search saved conversations",
        description="Saved conversations (a SQLite file in the r1chat data folder). "
        "With no action, lists them.",
    )
    p.set_defaults(func=run_list, json=False, limit=200)
    actions = p.add_subparsers(dest="history_action", metavar="ACTION", title="actions")

    ls = actions.add_parser("list", help="conversations, newest first")
    ls.add_argument("-n", "--limit", type=int, default=200, help="at most N (default 200)")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=run_list)

    show = actions.add_parser("show", help="print a conversation with its reasoning")
    show.add_argument("id", type=int, metavar="ID")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=run_show)

    export = actions.add_parser("export", help="write a conversation as Markdown or JSON")
    export.add_argument("id", type=int, metavar="ID")
    export.add_argument("--format", choices=("md", "json"), default="md", help="default: md")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default stdout)")
    export.set_defaults(func=run_export)

    rm = actions.add_parser("rm", help="delete a conversation")
    rm.add_argument("id", type=int, metavar="ID")
    rm.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    rm.set_defaults(func=run_rm)

    search = actions.add_parser("search", help="full-text search of prompts, answers, reasoning")
    search.add_argument("text", nargs="+", metavar="TEXT")
    search.add_argument("-n", "--limit", type=int, default=50, help="at most N hits (default 50)")
    search.add_argument("--json", action="store_true", help="print JSON")
    search.set_defaults(func=run_search)

    recover = actions.add_parser(
        "recover",
        help="rebuild a damaged history from every row it still holds (the damaged file is "
        "kept beside it)",
    )
    recover.set_defaults(func=run_recover)


def run_recover(args: argparse.Namespace) -> int:
    from r1chat.config import paths
    from r1chat.history.damage import DamagedHistory
    from r1chat.history.recover import recover
    from r1chat.history.store import History

    path = paths.history_db()
    if not path.exists():  # opening it would create one
        print(f"no history file yet ({path}); nothing to recover")
        return 0
    try:
        History(path).close()
    except DamagedHistory:
        print(recover(path))
        return 0
    print(f"{path} is whole (every page checked); nothing to recover")
    return 0


# -- helpers --------------------------------------------------------------------------


def _open() -> History:
    from r1chat.history.store import History

    return History()


def _console() -> Console | None:
    """A Rich console when stdout is a terminal, else None (plain output)."""
    if not sys.stdout.isatty():
        return None
    from rich.console import Console

    return Console(highlight=False, no_color=bool(os.environ.get("NO_COLOR")))


def _when(ts: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def _print_json(value: Any) -> None:
    import json

    print(json.dumps(value, ensure_ascii=False, indent=2))


def _conversation_dict(c: Conversation) -> dict[str, Any]:
    from r1chat.history.records import iso_time

    return {
        "id": c.id,
        "title": c.title,
        "model": c.model,
        "turns": c.turns,
        "source": c.source,
        "created_at": iso_time(c.created_at),
        "updated_at": iso_time(c.updated_at),
    }


# -- list -----------------------------------------------------------------------------


def run_list(args: argparse.Namespace) -> int:
    with _open() as history:
        conversations = history.list_conversations(limit=args.limit)
    if args.json:
        _print_json([_conversation_dict(c) for c in conversations])
        return 0
    if not conversations:
        print("no saved conversations", file=sys.stderr)
        return 0
    rows = [
        (str(c.id), _when(c.updated_at), str(c.turns), c.source, one_line(c.model), title)
        for c in conversations
        for title in [one_line(c.display_title)]
    ]
    header = ("ID", "UPDATED", "TURNS", "FROM", "MODEL", "TITLE")
    console = _console()
    if console is None:
        w = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
        for r in [header, *rows]:
            cells = (
                r[0].rjust(w[0]),
                r[1].ljust(w[1]),
                r[2].rjust(w[2]),
                r[3].ljust(w[3]),
                r[4].ljust(w[4]),
            )
            print("  ".join([*cells, r[5]]).rstrip())
        return 0
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("ID", justify="right", style="cyan")
    table.add_column("Updated", no_wrap=True)
    table.add_column("Turns", justify="right")
    table.add_column("From")
    table.add_column("Model", style="dim")
    table.add_column("Title", overflow="ellipsis", no_wrap=True)
    for r in rows:
        table.add_row(*r)
    console.print(table)
    return 0


# -- show -----------------------------------------------------------------------------


def run_show(args: argparse.Namespace) -> int:
    with _open() as history:
        if args.json:
            _print_json(history.export_json(args.id))
            return 0
        conversation = history.conversation(args.id)
        branch = history.branch(args.id)
    console = _console()
    if console is None:
        _show_plain(conversation, branch)
    else:
        _show_rich(console, conversation, branch)
    return 0


def _version(branch: Branch, m: StoredMessage) -> str:
    """` · version 2 of 3` beside a turn edited or regenerated (the branch shown)."""
    which, of = branch.version(m.id)
    return f" · version {which} of {of}" if of > 1 else ""


def _meta(c: Conversation) -> str:
    turns = f"{c.turns} turn{'s' if c.turns != 1 else ''}"
    model = one_line(c.model)
    return " · ".join(x for x in (model, f"updated {_when(c.updated_at)}", turns) if x)


def _show_plain(c: Conversation, branch: Branch) -> None:
    from r1chat.core import titles

    out = [f"#{c.id} {one_line(c.display_title)}", _meta(c), ""]
    for m in branch.messages:
        if m.role == "user":
            out += [f"## You{_version(branch, m)}", m.content.rstrip(), ""]
            continue
        model = f" ({one_line(m.model)})" if m.model else ""
        out.append(f"## Assistant{model}{_version(branch, m)}")
        if m.reasoning.strip():
            out.append(titles.from_stats(m.stats, m.thinking_stopped_by) + ":")
            out += [f"> {line}".rstrip() for line in m.reasoning.strip().splitlines()]
            out.append("")  # the answer is not part of the quoted reasoning
        if m.content.strip():
            out.append(m.content.rstrip())
        if note := titles.ending(m.finish_reason):
            out.append(f"({note})")
        out.append("")
    print("\n".join(out).rstrip())


def _show_rich(console: Console, c: Conversation, branch: Branch) -> None:
    from rich.markdown import Markdown
    from rich.rule import Rule
    from rich.text import Text

    from r1chat.core import titles

    console.print(Text(f"#{c.id} {one_line(c.display_title)}", style="bold"))
    console.print(Text(_meta(c), style="dim"))
    for m in branch.messages:
        console.print()
        if m.role == "user":
            console.print(Rule(Text(f"You{_version(branch, m)}", style="bold cyan"), align="left"))
            console.print(Text(printable(m.content.rstrip())))
            continue
        label = f"Assistant{f' · {one_line(m.model)}' if m.model else ''}{_version(branch, m)}"
        console.print(Rule(Text(label, style="bold green"), align="left"))
        if m.reasoning.strip():
            summary = titles.from_stats(m.stats, m.thinking_stopped_by)
            console.print(Text(summary, style="dim italic"))
            console.print(Text(printable(m.reasoning.strip()), style="dim"))
            console.print()
        if m.content.strip():
            console.print(Markdown(printable(m.content)))
        if note := titles.ending(m.finish_reason):
            console.print(Text(f"({note})", style="yellow"))


# -- export ---------------------------------------------------------------------------


def run_export(args: argparse.Namespace) -> int:
    with _open() as history:
        if args.format == "json":
            import json

            text = json.dumps(history.export_json(args.id), ensure_ascii=False, indent=2) + "\n"
        else:
            text = history.export_markdown(args.id)
    if not args.output:
        sys.stdout.write(text)
        return 0
    from pathlib import Path

    path = Path(args.output).expanduser()
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise R1ChatError(f"cannot write {path}: {e.strerror or e}") from None
    print(f"wrote {path}", file=sys.stderr)
    return 0


# -- rm -------------------------------------------------------------------------------


def run_rm(args: argparse.Namespace) -> int:
    with _open() as history:
        c = history.conversation(args.id)
        if not args.yes:
            if not sys.stdin.isatty():
                raise UsageError(
                    f"refusing to delete conversation {c.id} without --yes "
                    "(stdin is not a terminal)"
                )
            turns = f"{c.turns} turn{'s' if c.turns != 1 else ''}"
            try:
                answer = input(f"Delete conversation {c.id} “{c.display_title}” ({turns})? [y/N] ")
            except EOFError:
                answer = ""
            if answer.strip().lower() not in ("y", "yes"):
                print("not deleted", file=sys.stderr)
                return 1
        history.delete(c.id)
    print(f"deleted conversation {c.id}")
    return 0


# -- search ---------------------------------------------------------------------------


def run_search(args: argparse.Namespace) -> int:
    text = " ".join(args.text)
    console = None if args.json else _console()
    mark = _MARK if console is not None else ("[", "]")
    with _open() as history:
        hits = history.search(text, limit=args.limit, mark=mark)
    if args.json:
        from r1chat.history.records import iso_time

        _print_json(
            [
                {
                    "conversation_id": h.conversation_id,
                    "message_id": h.message_id,
                    "role": h.role,
                    "title": h.title,
                    "snippet": h.snippet,
                    "updated_at": iso_time(h.updated_at),
                }
                for h in hits
            ]
        )
        return 0
    if not hits:
        print(f"no matches for {text!r}", file=sys.stderr)
        return 0
    if console is None:
        for h in hits:
            title = one_line(h.title or "(untitled)")
            print(f"{h.conversation_id}  {h.role:<9}  {title}: {one_line(h.snippet)}")
        return 0
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("ID", justify="right", style="cyan")
    table.add_column("Role", style="dim")
    table.add_column("Title", max_width=30, overflow="ellipsis", no_wrap=True)
    table.add_column("Match")
    for h in hits:
        title = one_line(h.title or "(untitled)")
        table.add_row(str(h.conversation_id), h.role, title, _marked(one_line(h.snippet)))
    console.print(table)
    return 0


def _marked(snippet: str) -> Any:
    from rich.text import Text

    text = Text()
    start, end = _MARK
    for i, part in enumerate(snippet.replace(end, start).split(start)):
        text.append(part, style="bold yellow" if i % 2 else "")
    return text
