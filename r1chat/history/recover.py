"""`r1chat history recover`: copy every row a damaged history still holds into a fresh
file, keeping ids, then put the fresh file in its place (the damaged one is kept beside it).

A disk that loses pages loses the rows on them, not the rest: rows are read by id, in
ranges that are split until every readable row is found (a range that reads a bad page
fails; its halves are tried apart); then the file's pages are read directly
(`history.pages`), which finds the rows SQLite cannot reach (a file cut short, a lost
root page). A conversation whose row was lost but whose messages were not is rebuilt
around them, under its own id, titled from its first prompt. The full-text index is
rebuilt as the rows go in, and ids already given out stay given out.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1chat.core.errors import R1ChatError
from r1chat.history.damage import move_aside
from r1chat.history.pages import MESSAGE_COLUMNS, Scanned, scan
from r1chat.history.records import make_title
from r1chat.history.store import History

RANGE = 256
QUIET_RANGES = 8  # past the highest known id: ranges without rows before giving up
COLUMNS = {
    "conversations": ("id", "title", "model", "source", "created_at", "updated_at", "current_id"),
    "messages": ("id", *MESSAGE_COLUMNS),
}
RECOVERED = "(recovered)"
"""Marks the title of a conversation rebuilt from its messages."""


@dataclass(frozen=True, slots=True)
class Counts:
    conversations: int
    messages: int
    cut: int  # messages whose end was on a lost page
    not_found: int  # conversation ids up to the highest given out that did not come back


@dataclass(frozen=True, slots=True)
class Recovered:
    counts: Counts
    aside: Path  # where the damaged file was moved

    def __str__(self) -> str:
        c = self.counts
        if not c.conversations and not c.messages:
            return f"nothing could be read from the damaged history (kept as {self.aside})"
        lost = []
        if c.cut:
            their = "their end was" if c.cut > 1 else "its end was"
            lost.append(f"{_n(c.cut, 'message')} cut short: {their} on lost pages")
        if c.not_found:
            lost.append(
                f"{_n(c.not_found, 'conversation')} not found (lost with the damage, or "
                "deleted before)"
            )
        said = f" ({'; '.join(lost)})" if lost else ""
        return (
            f"recovered {_n(c.conversations, 'conversation')} and {_n(c.messages, 'message')}"
            f", with their ids{said}; the damaged file is kept as {self.aside}"
        )


def _n(count: int, thing: str) -> str:
    return f"{count:,} {thing}{'s' if count != 1 else ''}"


def recover(path: Path) -> Recovered:
    """Rebuild the history at `path` from what it still holds (raises R1ChatError)."""
    fresh = path.with_name(path.name + ".recovering")
    for suffix in ("", "-wal", "-shm"):
        fresh.with_name(fresh.name + suffix).unlink(missing_ok=True)
    try:
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as e:
        raise R1ChatError(f"cannot read {path}: {e}") from None
    try:
        scanned = scan(path)
    except OSError as e:
        source.close()
        raise R1ChatError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        target = History(fresh)
        try:
            counts = _copy(source, target, scanned)
        finally:
            target.close()
    finally:
        source.close()
    aside = move_aside(path)
    try:
        os.replace(fresh, path)
    except OSError as e:
        raise R1ChatError(f"cannot put the recovered history in place: {e.strerror}") from None
    return Recovered(counts, aside)


def _copy(source: sqlite3.Connection, target: History, scanned: Scanned) -> Counts:
    """Every row SQLite reads, then those only the pages hold; the counts."""
    conversations = {row["id"]: row for row in _rows(source, "conversations")}
    for cid, row in scanned.conversations.items():
        conversations.setdefault(cid, {"id": cid, **row})
    messages = {row["id"]: row for row in _rows(source, "messages")}
    cut = len(scanned.cut - set(messages))  # (a row SQLite read is whole)
    for mid, row in scanned.messages.items():
        messages.setdefault(mid, {"id": mid, **row})
    _link_orphans(messages)
    with target.restoring() as conn:  # one transaction of plain inserts, ids kept
        when: dict[int, float] = {}
        for cid in sorted(conversations):
            row = conversations[cid]
            row.setdefault("created_at", 0.0)
            row.setdefault("updated_at", row["created_at"])
            _insert(conn, "conversations", row)
            when[cid] = row["created_at"]
        for mid in sorted(messages):
            row = messages[mid]
            if row["conversation_id"] not in when:
                _rebuild_conversation(conn, row)
                when[row["conversation_id"]] = row.get("created_at") or 0.0
            row.setdefault("created_at", when[row["conversation_id"]])
            row.setdefault("updated_at", row["created_at"])
            _insert(conn, "messages", row)
        tops = {}
        for table in ("conversations", "messages"):
            tops[table] = max(
                _sequence(source, table), scanned.sequence.get(table, 0), _max_id(conn, table)
            )
            conn.execute("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
            conn.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, tops[table])
            )
    not_found = tops["conversations"] - len(when)
    return Counts(len(when), len(messages), cut, not_found)


def _link_orphans(messages: dict[int, dict[str, Any]]) -> None:
    """A message whose parent was lost (or not read: the end of a cut record) follows the
    message before it, as every message did before branches."""
    before: dict[int, int] = {}  # conversation -> its last message so far
    for mid in sorted(messages):
        row = messages[mid]
        parent = row.get("parent_id", -1)
        if parent is not None and parent not in messages:
            row["parent_id"] = before.get(row["conversation_id"])
        before[row["conversation_id"]] = mid


def _rows(source: sqlite3.Connection, table: str) -> Iterator[dict[str, Any]]:
    """Every row of `table` that can still be read, by id: up to the highest id known (the
    table's sequence, its max, which the damage may hide), then on until several ranges
    in a row hold none."""
    source.row_factory = sqlite3.Row
    top = _sequence(source, table)
    with contextlib.suppress(sqlite3.Error):
        top = max(top, source.execute(f"SELECT max(id) FROM {table}").fetchone()[0] or 0)
    lo, quiet = 1, 0
    while lo <= top or quiet < QUIET_RANGES:
        rows = _range(source, table, lo, lo + RANGE - 1)
        yield from rows
        quiet = 0 if rows else quiet + 1
        lo += RANGE


def _range(source: sqlite3.Connection, table: str, lo: int, hi: int) -> list[dict[str, Any]]:
    """The readable rows with ids `lo` to `hi` (a range that fails is read in halves; one
    id is looked up alone, which never steps onto the next, perhaps damaged, page)."""
    where, args = ("id = ?", (lo,)) if lo == hi else ("id BETWEEN ? AND ?", (lo, hi))
    try:
        rows = source.execute(f"SELECT * FROM {table} WHERE {where} ORDER BY id", args).fetchall()
    except sqlite3.Error:
        if lo == hi:
            return []
        mid = (lo + hi) // 2
        return _range(source, table, lo, mid) + _range(source, table, mid + 1, hi)
    return [dict(r) for r in rows]


def _sequence(conn: sqlite3.Connection, table: str) -> int:
    with contextlib.suppress(sqlite3.Error):
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
        return int(row[0]) if row else 0
    return 0


def _max_id(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0])


def _insert(conn: sqlite3.Connection, table: str, row: dict[str, Any]) -> None:
    names = [c for c in COLUMNS[table] if c in row]
    marks = ", ".join("?" for _ in names)
    conn.execute(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", [row[n] for n in names]
    )


def _rebuild_conversation(conn: sqlite3.Connection, first: dict[str, Any]) -> None:
    """The row of a lost conversation, from its first surviving message."""
    prompt = first.get("content") if first.get("role") == "user" else ""
    title = f"{make_title(prompt)} {RECOVERED}" if prompt else f"(a conversation) {RECOVERED}"
    when = first.get("created_at") or 0.0
    _insert(
        conn,
        "conversations",
        {
            "id": first["conversation_id"],
            "title": title,
            "model": first.get("model") or "",
            "created_at": when,
            "updated_at": when,
        },
    )
