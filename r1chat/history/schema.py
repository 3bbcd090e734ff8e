"""The history database's tables, indexes, FTS5 index and triggers, by schema version."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

SCHEMA_VERSION = 4

_SCHEMA_V1 = (
    """
    CREATE TABLE conversations (
        id          INTEGER PRIMARY KEY,
        title       TEXT NOT NULL DEFAULT '',
        model       TEXT NOT NULL DEFAULT '',
        created_at  REAL NOT NULL,
        updated_at  REAL NOT NULL
    )
    """,
    "CREATE INDEX conversations_by_updated ON conversations (updated_at DESC, id DESC)",
    """
    CREATE TABLE messages (
        id                   INTEGER PRIMARY KEY,
        conversation_id      INTEGER NOT NULL
                             REFERENCES conversations (id) ON DELETE CASCADE,
        role                 TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
        content              TEXT NOT NULL DEFAULT '',
        reasoning            TEXT NOT NULL DEFAULT '',
        model                TEXT NOT NULL DEFAULT '',
        sampling             TEXT,
        stats                TEXT,
        finish_reason        TEXT,
        thinking_stopped_by  TEXT,
        created_at           REAL NOT NULL,
        updated_at           REAL NOT NULL
    )
    """,
    "CREATE INDEX messages_by_conversation ON messages (conversation_id, id)",
    """
    CREATE VIRTUAL TABLE messages_fts USING fts5 (
        content, reasoning, content = 'messages', content_rowid = 'id'
    )
    """,
    """
    CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, content, reasoning)
        VALUES (new.id, new.content, new.reasoning);
    END
    """,
    """
    CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content, reasoning)
        VALUES ('delete', old.id, old.content, old.reasoning);
    END
    """,
    """
    CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, reasoning ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content, reasoning)
        VALUES ('delete', old.id, old.content, old.reasoning);
        INSERT INTO messages_fts (rowid, content, reasoning)
        VALUES (new.id, new.content, new.reasoning);
    END
    """,
)

# Migration hook: MIGRATIONS[n] takes a database at version n - 1 to version n. It runs
# inside the opening transaction (BEGIN IMMEDIATE), so concurrent openers apply it once,
# with foreign keys off (a table rebuild must not cascade), checked before the commit.
Migration = Callable[[sqlite3.Connection], None]


def _create_v1(conn: sqlite3.Connection) -> None:
    for statement in _SCHEMA_V1:
        conn.execute(statement)


def _add_source_v2(conn: sqlite3.Connection) -> None:
    """Where a conversation was started: the chat, or `r1chat ask`."""
    conn.execute("ALTER TABLE conversations ADD COLUMN source TEXT NOT NULL DEFAULT 'chat'")


def _rebuild(conn: sqlite3.Connection, table: str, columns: str) -> None:
    """Recreate `table` with `columns`, keeping its rows and ids (SQLite's own procedure:
    new table, copy, drop, rename; indexes and triggers are recreated by the caller)."""
    conn.execute(f"CREATE TABLE {table}_new ({columns})")
    names = ", ".join(r[1] for r in conn.execute(f"PRAGMA table_info({table})"))
    conn.execute(f"INSERT INTO {table}_new ({names}) SELECT {names} FROM {table}")
    conn.execute(f"DROP TABLE {table}")
    conn.execute(f"ALTER TABLE {table}_new RENAME TO {table}")


def _ids_never_reused_v3(conn: sqlite3.Connection) -> None:
    """AUTOINCREMENT ids: a deleted conversation's or message's id is never given again
    (a script that saved an id must not open another chat with it)."""
    _rebuild(
        conn,
        "conversations",
        """id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL DEFAULT '',
        model TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL, updated_at REAL NOT NULL,
        source TEXT NOT NULL DEFAULT 'chat'""",
    )
    _rebuild(
        conn,
        "messages",
        """id INTEGER PRIMARY KEY AUTOINCREMENT,
        conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
        content TEXT NOT NULL DEFAULT '', reasoning TEXT NOT NULL DEFAULT '',
        model TEXT NOT NULL DEFAULT '', sampling TEXT, stats TEXT, finish_reason TEXT,
        thinking_stopped_by TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL""",
    )
    for statement in _SCHEMA_V1:  # the indexes and FTS triggers went with the old tables
        if statement.lstrip().startswith(("CREATE INDEX", "CREATE TRIGGER")):
            conn.execute(statement)


def _branches_and_tools_v4(conn: sqlite3.Connection) -> None:
    """A tree of messages: each one's parent (None for a first prompt), so an edited prompt
    or a regenerated reply is a sibling that keeps the old one; and each conversation's
    `current_id`, the leaf of the branch last shown. An older history was one line: each
    message's parent is the one before it. And a reply's tool rounds (MCP tools): each
    round's reasoning, text, calls and results, as JSON."""
    conn.execute("ALTER TABLE messages ADD COLUMN parent_id INTEGER")
    conn.execute("ALTER TABLE messages ADD COLUMN tool_rounds TEXT")
    conn.execute("ALTER TABLE conversations ADD COLUMN current_id INTEGER")
    conn.execute(
        "UPDATE messages SET parent_id = (SELECT max(p.id) FROM messages p "
        "WHERE p.conversation_id = messages.conversation_id AND p.id < messages.id)"
    )
    conn.execute(
        "UPDATE conversations SET current_id = "
        "(SELECT max(m.id) FROM messages m WHERE m.conversation_id = conversations.id)"
    )
    conn.execute(BY_PARENT)


BY_PARENT = "CREATE INDEX messages_by_parent ON messages (parent_id)"

MIGRATIONS: dict[int, Migration] = {
    1: _create_v1,
    2: _add_source_v2,
    3: _ids_never_reused_v3,
    4: _branches_and_tools_v4,
}
