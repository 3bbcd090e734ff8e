"""Conversation history in one SQLite file: every turn with its reasoning, stats and settings.

The file (default `paths.history_db()`) is opened in WAL mode with a busy timeout, so
several r1chat processes can read and write it at once: readers never block, writers
queue for a few seconds instead of failing. Every write is one short `BEGIN IMMEDIATE`
transaction, which makes `update_message` cheap enough to call once per second while a
reply streams, so a killed process loses at most the last second of text.

Full-text search runs on an FTS5 index of message content and reasoning, kept in sync
with the `messages` table by triggers (insert, update and delete, including the cascade
from deleting a conversation).

A `History` may be shared between threads (one connection guarded by a lock).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from r1chat.config import paths
from r1chat.core import storage
from r1chat.core.errors import R1ChatError
from r1chat.history import tree
from r1chat.history.damage import DamagedHistory, damaged
from r1chat.history.records import (
    Branch,
    Conversation,
    SearchHit,
    StoredMessage,
    StoredRole,
    fts_query,
    make_title,
)
from r1chat.history.schema import MIGRATIONS, SCHEMA_VERSION

BUSY_TIMEOUT_S = 5.0
LEAF: Literal["leaf"] = "leaf"
"""A new message's parent: the end of the branch shown (what appending means)."""
Parent = int | None | Literal["leaf"]


class History:
    """The conversation store. Every method is one short transaction; errors are R1ChatError."""

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        timeout: float = BUSY_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path) if path is not None else paths.history_db()
        self._clock = clock
        self._lock = threading.RLock()
        self.read_only: str | None = None
        """Why the history cannot be written here (a read-only file system, a full disk):
        it is read (listed, shown, searched, continued) and nothing new is saved."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            why = storage.problem(self.path.parent, e)
            raise R1ChatError(f"cannot create {self.path.parent}: {why}") from None
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as e:
            raise R1ChatError(f"cannot open history {self.path}: {e}") from None
        try:
            self._setup_waiting(timeout)
        except sqlite3.DatabaseError as e:
            self._conn.close()
            if damaged(e):
                raise DamagedHistory(self.path, str(e)) from None
            if (why := storage.problem(self.path)) is None or not self.path.is_file():
                why = _reason(e, self.path) if why is None else why
                raise R1ChatError(f"cannot open history {self.path}: {why}") from None
            self._open_read_only(why)
        except BaseException:
            self._conn.close()
            raise

    def _open_read_only(self, why: str) -> None:
        """The history as it is, for reading only: nothing here can change it (`immutable`:
        no journal to write either)."""
        uri = f"file:{quote(str(self.path.resolve()))}?mode=ro&immutable=1"
        try:
            self._conn = sqlite3.connect(
                uri, uri=True, isolation_level=None, check_same_thread=False
            )
            self._conn.row_factory = sqlite3.Row
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as e:
            raise R1ChatError(f"cannot open history {self.path}: {why} ({e})") from None
        if version != SCHEMA_VERSION:
            self._conn.close()
            raise R1ChatError(
                f"history {self.path} needs upgrading, which cannot be written: {why}"
            )
        self.read_only = why

    def _setup_waiting(self, timeout: float) -> None:
        """`_setup`, waiting out another process that is creating the same file (switching
        a new file to WAL can answer "locked" without calling the busy handler)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._setup()
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _setup(self) -> None:
        conn = self._conn
        conn.row_factory = sqlite3.Row
        # Reading the schema first turns a non-database file into "file is not a database"
        # before anything is written; nothing here ever truncates or recreates the file.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        conn.execute("PRAGMA journal_mode = WAL").fetchone()
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL: durable across process kills
        conn.execute("PRAGMA secure_delete = ON")  # a deleted chat's text is zeroed on disk
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            conn.execute("PRAGMA foreign_keys = OFF")  # see `schema.MIGRATIONS`
            self._migrate()
        conn.execute("PRAGMA foreign_keys = ON")
        self._check()

    def _check(self) -> None:
        """SQLite's `quick_check` of every page (0.05 s for 90 MB: `bench/history_open.py`):
        damage anywhere is found when the file opens, not when a reply hits it."""
        problems = [row[0] for row in self._conn.execute("PRAGMA quick_check(100)")]
        if problems != ["ok"]:
            pages = sorted({int(p) for p in re.findall(r"Page (\d+)", "\n".join(problems))})
            if not pages:
                raise sqlite3.DatabaseError(f"damaged: {problems[0].splitlines()[0]}")
            shown = ", ".join(map(str, pages[:5])) + (", …" if len(pages) > 5 else "")
            raise sqlite3.DatabaseError(f"{len(pages)} damaged pages: {shown}")

    def _migrate(self) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise R1ChatError(
                    f"history {self.path} was written by a newer r1chat "
                    f"(schema {version}, this one knows {SCHEMA_VERSION}); upgrade r1chat"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[target](conn)
            if conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
                raise R1ChatError(f"history {self.path}: upgrading it broke a reference")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- plumbing ---------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front (IMMEDIATE) so the busy timeout applies."""
        if self.read_only is not None:
            raise R1ChatError(
                f"history {self.path} cannot be written: {self.read_only} (what it holds "
                "can still be read)"
            )
        with self._lock, self._errors():
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: a consistent snapshot across several SELECTs."""
        with self._lock, self._errors():
            conn = self._conn
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.ProgrammingError as e:
            if "closed" in str(e):
                raise R1ChatError(f"history {self.path} is closed") from None
            raise
        except sqlite3.Error as e:
            if damaged(e):
                raise DamagedHistory(self.path, str(e)) from None
            raise R1ChatError(f"history {self.path}: {_reason(e, self.path)}") from None

    def restoring(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write transaction on the connection itself, for `history.recover` to put
        rows back with their ids."""
        return self._write()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- conversations ----------------------------------------------------------------

    def new_conversation(self, title: str = "", model: str = "", source: str = "chat") -> int:
        now = self._clock()
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO conversations (title, model, source, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (title.strip(), model, source, now, now),
            )
            return _rowid(cur)

    def list_conversations(self, limit: int = 200) -> list[Conversation]:
        """Newest first (by last update)."""
        with self._read() as conn:
            rows = conn.execute(
                f"{_CONVERSATION_SELECT} ORDER BY c.updated_at DESC, c.id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [_conversation(r) for r in rows]

    def conversation(self, conversation_id: int) -> Conversation:
        """The conversation; R1ChatError `no conversation N` if there is none."""
        with self._read() as conn:
            return _get_conversation(conn, conversation_id)

    def rename(self, conversation_id: int, title: str) -> None:
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE conversations SET title = ?, updated_at = ? WHERE id = ?",
                (title.strip(), self._clock(), conversation_id),
            )
            if cur.rowcount == 0:
                raise R1ChatError(f"no conversation {conversation_id}")

    def delete(self, conversation_id: int) -> None:
        """Delete a conversation and all its messages."""
        with self._write() as conn:
            cur = conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
            if cur.rowcount == 0:
                raise R1ChatError(f"no conversation {conversation_id}")

    # -- messages ---------------------------------------------------------------------

    def add_message(
        self,
        conversation_id: int,
        role: StoredRole,
        content: str,
        *,
        reasoning: str = "",
        model: str = "",
        sampling: dict[str, Any] | None = None,
        parent: Parent = LEAF,
    ) -> int:
        """Add a message after `parent` (by default at the end of the branch shown), which
        becomes the branch shown. The first user message titles an untitled conversation;
        a message's model becomes the conversation's model."""
        if role not in ("user", "assistant"):
            raise ValueError(f"role must be 'user' or 'assistant', not {role!r}")
        with self._write() as conn:
            return self._insert(
                conn, conversation_id, parent, role, content, reasoning, model, sampling
            )

    def add_exchange(
        self,
        conversation_id: int,
        prompt: str,
        model: str,
        sampling: dict[str, Any],
        parent: Parent = LEAF,
    ) -> tuple[int, int]:
        """A prompt after `parent` and its (empty) reply row, in one transaction: a full
        disk never leaves a prompt whose reply, and the model it used, were not recorded.
        Returns both ids."""
        with self._write() as conn:
            cid = conversation_id
            prompt_id = self._insert(conn, cid, parent, "user", prompt, "", model, None)
            reply_id = self._insert(conn, cid, prompt_id, "assistant", "", "", model, sampling)
            return prompt_id, reply_id

    def _insert(
        self,
        conn: sqlite3.Connection,
        conversation_id: int,
        parent: Parent,
        role: StoredRole,
        content: str,
        reasoning: str,
        model: str,
        sampling: dict[str, Any] | None,
    ) -> int:
        now = self._clock()
        row = conn.execute(
            "SELECT title FROM conversations WHERE id = ?", (conversation_id,)
        ).fetchone()
        if row is None:
            raise R1ChatError(f"no conversation {conversation_id}")
        if parent == LEAF:
            parent = _leaf(conn, conversation_id)
        cur = conn.execute(
            "INSERT INTO messages (conversation_id, parent_id, role, content, reasoning, model, "
            "sampling, stats, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
            (conversation_id, parent, role, content, reasoning, model, _dumps(sampling), now, now),
        )
        title = row["title"] or (make_title(content) if role == "user" else "")
        conn.execute(
            "UPDATE conversations SET title = ?, updated_at = ?, current_id = ?, "
            "model = CASE WHEN ? != '' THEN ? ELSE model END WHERE id = ?",
            (title, now, _rowid(cur), model, model, conversation_id),
        )
        return _rowid(cur)

    def update_message(
        self,
        message_id: int,
        *,
        content: str | None = None,
        reasoning: str | None = None,
        stats: dict[str, Any] | None = None,
        finish_reason: str | None = None,
        thinking_stopped_by: str | None = None,
        tool_rounds: list[dict[str, Any]] | None = None,
    ) -> bool:
        """Replace the given fields (None leaves a field as it is) in one short transaction.

        Meant to be called about once a second while a reply streams, with the full text
        so far. Returns False if the message no longer exists (deleted elsewhere).
        """
        fields = {
            "content": content,
            "reasoning": reasoning,
            "stats": _dumps(stats),
            "finish_reason": finish_reason,
            "thinking_stopped_by": thinking_stopped_by,
            "tool_rounds": None
            if tool_rounds is None
            else json.dumps(tool_rounds, ensure_ascii=False),
        }
        changes: dict[str, str | float] = {k: v for k, v in fields.items() if v is not None}
        now = self._clock()
        changes["updated_at"] = now
        assignments = ", ".join(f"{k} = ?" for k in changes)  # keys are ours, not input
        with self._write() as conn:
            cur = conn.execute(
                f"UPDATE messages SET {assignments} WHERE id = ?", (*changes.values(), message_id)
            )
            if cur.rowcount == 0:
                return False
            conn.execute(
                "UPDATE conversations SET updated_at = ? "
                "WHERE id = (SELECT conversation_id FROM messages WHERE id = ?)",
                (now, message_id),
            )
            return True

    def delete_message(self, message_id: int) -> bool:
        """Delete one message (a reply that never started); what followed it follows its
        parent. If it ended the branch shown, the branch through its parent is shown.
        False if it was not there."""
        with self._write() as conn:
            row = conn.execute(
                "SELECT conversation_id, parent_id FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
            if row is None:
                return False
            cid, parent = row["conversation_id"], row["parent_id"]
            conn.execute(
                "UPDATE messages SET parent_id = ? WHERE parent_id = ?", (parent, message_id)
            )
            conn.execute("DELETE FROM messages WHERE id = ?", (message_id,))
            current = conn.execute(
                "SELECT current_id FROM conversations WHERE id = ?", (cid,)
            ).fetchone()["current_id"]
            if current == message_id:
                rows = _get_messages(conn, cid)
                current = tree.leaf_under(rows, parent) if parent is not None else None
            conn.execute(
                "UPDATE conversations SET updated_at = ?, current_id = ? WHERE id = ?",
                (self._clock(), current, cid),
            )
            return True

    def messages(self, conversation_id: int) -> list[StoredMessage]:
        """The messages of the branch shown, first to last."""
        return self.branch(conversation_id).messages

    def branch(self, conversation_id: int) -> Branch:
        """The branch shown (the one shown last, or through the newest message), with how
        many versions each of its turns has."""
        with self._read() as conn:
            return _get_branch(conn, conversation_id)

    def sibling(self, conversation_id: int, message_id: int, step: int) -> int | None:
        """The version of a message `step` places from it (None: none that far)."""
        with self._read() as conn:
            return tree.sibling(_get_messages(conn, conversation_id), message_id, step)

    def show(self, conversation_id: int, message_id: int) -> None:
        """Show the branch through `message_id` (to its newest end) from now on."""
        with self._write() as conn:
            rows = _get_messages(conn, conversation_id)
            if not any(m.id == message_id for m in rows):
                raise R1ChatError(f"no message {message_id} in conversation {conversation_id}")
            conn.execute(
                "UPDATE conversations SET current_id = ? WHERE id = ?",
                (tree.leaf_under(rows, message_id), conversation_id),
            )

    def message(self, message_id: int) -> StoredMessage | None:
        with self._read() as conn:
            row = conn.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone()
        return _message(row) if row is not None else None

    # -- search -----------------------------------------------------------------------

    def search(
        self, text: str, limit: int = 50, *, mark: tuple[str, str] = ("[", "]")
    ) -> list[SearchHit]:
        """Messages whose prompt, answer or reasoning contain all the words of `text`
        (the last word as a prefix), best match first. Any input is safe to pass."""
        query = fts_query(text)
        if not query:
            return []
        with self._read() as conn:
            rows = conn.execute(
                "SELECT m.id, m.conversation_id, m.role, m.updated_at, c.title, "
                "snippet(messages_fts, -1, ?, ?, '…', 16) AS snippet "
                "FROM messages_fts "
                "JOIN messages m ON m.id = messages_fts.rowid "
                "JOIN conversations c ON c.id = m.conversation_id "
                "WHERE messages_fts MATCH ? ORDER BY rank, m.id DESC LIMIT ?",
                (mark[0], mark[1], query, limit),
            ).fetchall()
        return [
            SearchHit(
                conversation_id=r["conversation_id"],
                message_id=r["id"],
                role=r["role"],
                title=r["title"],
                snippet=" ".join((r["snippet"] or "").split()),
                updated_at=r["updated_at"],
            )
            for r in rows
        ]

    # -- export -----------------------------------------------------------------------

    def _snapshot(self, conversation_id: int) -> tuple[Conversation, list[StoredMessage]]:
        with self._read() as conn:
            conversation = _get_conversation(conn, conversation_id)
            return conversation, _get_branch(conn, conversation_id).messages

    def export_json(self, conversation_id: int) -> dict[str, Any]:
        from r1chat.history import export

        return export.to_json(*self._snapshot(conversation_id))

    def export_markdown(self, conversation_id: int) -> str:
        from r1chat.history import export

        return export.to_markdown(*self._snapshot(conversation_id))


_CONVERSATION_SELECT = (
    "SELECT c.id, c.title, c.model, c.source, c.created_at, c.updated_at, "
    "(WITH RECURSIVE shown (id, parent_id, role) AS ("  # the prompts of the branch shown
    " SELECT id, parent_id, role FROM messages WHERE id = coalesce("
    "  (SELECT id FROM messages WHERE id = c.current_id AND conversation_id = c.id),"
    "  (SELECT max(id) FROM messages WHERE conversation_id = c.id))"
    " UNION SELECT m.id, m.parent_id, m.role FROM messages m JOIN shown ON m.id = shown.parent_id"
    ") SELECT count(*) FROM shown WHERE role = 'user') AS turns FROM conversations c"
)


def _leaf(conn: sqlite3.Connection, conversation_id: int) -> int | None:
    """The end of the branch shown (None: no message yet)."""
    row = conn.execute(
        "SELECT coalesce((SELECT m.id FROM messages m WHERE m.id = c.current_id "
        "AND m.conversation_id = c.id), (SELECT max(id) FROM messages "
        "WHERE conversation_id = c.id)) AS leaf FROM conversations c WHERE c.id = ?",
        (conversation_id,),
    ).fetchone()
    return row["leaf"] if row is not None else None


def _get_branch(conn: sqlite3.Connection, conversation_id: int) -> Branch:
    row = conn.execute(
        "SELECT current_id FROM conversations WHERE id = ?", (conversation_id,)
    ).fetchone()
    return tree.branch(_get_messages(conn, conversation_id), row and row["current_id"])


def _get_conversation(conn: sqlite3.Connection, conversation_id: int) -> Conversation:
    row = conn.execute(f"{_CONVERSATION_SELECT} WHERE c.id = ?", (conversation_id,)).fetchone()
    if row is None:
        raise R1ChatError(f"no conversation {conversation_id}")
    return _conversation(row)


def _get_messages(conn: sqlite3.Connection, conversation_id: int) -> list[StoredMessage]:
    rows = conn.execute(
        "SELECT * FROM messages WHERE conversation_id = ? ORDER BY id", (conversation_id,)
    ).fetchall()
    return [_message(r) for r in rows]


def _conversation(row: sqlite3.Row) -> Conversation:
    return Conversation(
        id=row["id"],
        title=row["title"],
        model=row["model"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        turns=row["turns"],
        source=row["source"],
    )


def _message(row: sqlite3.Row) -> StoredMessage:
    return StoredMessage(
        id=row["id"],
        conversation_id=row["conversation_id"],
        role=row["role"],
        content=row["content"],
        reasoning=row["reasoning"],
        model=row["model"],
        sampling=_loads(row["sampling"]),
        stats=_loads(row["stats"]),
        finish_reason=row["finish_reason"],
        thinking_stopped_by=row["thinking_stopped_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        parent_id=row["parent_id"],
        tool_rounds=_rounds(row["tool_rounds"]),
    )


def _dumps(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


def _loads(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _rounds(text: str | None) -> list[dict[str, Any]] | None:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return value if isinstance(value, list) else None


def _rowid(cur: sqlite3.Cursor) -> int:
    assert cur.lastrowid is not None
    return cur.lastrowid


def _reason(e: sqlite3.Error, path: Path) -> str:
    text = str(e)
    written = ("disk I/O error", "disk is full", "readonly", "unable to open")
    if any(w in text for w in written) and (why := storage.problem(path)) is not None:
        return why
    if "no such module: fts5" in text:
        return "this Python's SQLite lacks FTS5 (full-text search), which r1chat needs"
    if "locked" in text or "busy" in text:
        return f"{text} (another r1chat process kept it busy for over {BUSY_TIMEOUT_S:g}s)"
    return text
