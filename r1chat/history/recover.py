"""`r1chat history recover`: copy every row a damaged history still holds into a fresh
file, keeping ids, then put the fresh file in its place (the damaged one is kept beside it).

A disk that loses pages loses the rows on them, not the rest: rows are read by id, in
ranges that are split until every readable row is found (a range that reads a bad page
fails; its halves are tried apart). A conversation whose row was lost but whose messages
were not is rebuilt around them, under its own id, titled from its first prompt. The
full-text index is rebuilt as the rows go in, and ids already given out stay given out.
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
from r1chat.history.records import make_title
from r1chat.history.store import History

RANGE = 256
QUIET_RANGES = 8  # past the highest known id: ranges without rows before giving up
COLUMNS = {
    "conversations": ("id", "title", "model", "source", "created_at", "updated_at"),
    "messages": (
        "id",
        "conversation_id",
        "role",
        "content",
        "reasoning",
        "model",
        "sampling",
        "stats",
        "finish_reason",
        "thinking_stopped_by",
        "created_at",
        "updated_at",
    ),
}
RECOVERED = "(recovered)"
"""Marks the title of a conversation rebuilt from its messages."""


@dataclass(frozen=True, slots=True)
class Recovered:
    conversations: int
    messages: int
    aside: Path  # where the damaged file was moved

    def __str__(self) -> str:
        if not self.conversations and not self.messages:
            return f"nothing could be read from the damaged history (kept as {self.aside})"
        c, m = self.conversations, self.messages
        return (
            f"recovered {c:,} conversation{'s' if c != 1 else ''} and {m:,} "
            f"message{'s' if m != 1 else ''}, with their ids; the damaged file is kept "
            f"as {self.aside}"
        )


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
        target = History(fresh)
        try:
            counts = _copy(source, target)
        finally:
            target.close()
    finally:
        source.close()
    aside = move_aside(path)
    try:
        os.replace(fresh, path)
    except OSError as e:
        raise R1ChatError(f"cannot put the recovered history in place: {e.strerror}") from None
    return Recovered(*counts, aside)


def _copy(source: sqlite3.Connection, target: History) -> tuple[int, int]:
    with target.restoring() as conn:  # one transaction of plain inserts, ids kept
        kept = set()
        for row in _rows(source, "conversations"):
            _insert(conn, "conversations", row)
            kept.add(row["id"])
        messages = 0
        for row in _rows(source, "messages"):
            if row["conversation_id"] not in kept:
                _rebuild_conversation(conn, row)
                kept.add(row["conversation_id"])
            _insert(conn, "messages", row)
            messages += 1
        for table in ("conversations", "messages"):
            top = max(_sequence(source, table), _max_id(conn, table))
            conn.execute("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
            conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, top))
    return len(kept), messages


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
