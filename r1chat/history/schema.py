"""The history database's tables, indexes, FTS5 index and triggers, by schema version."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

SCHEMA_VERSION = 2

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
# inside the opening transaction (BEGIN IMMEDIATE), so concurrent openers apply it once.
Migration = Callable[[sqlite3.Connection], None]


def _create_v1(conn: sqlite3.Connection) -> None:
    for statement in _SCHEMA_V1:
        conn.execute(statement)


def _add_source_v2(conn: sqlite3.Connection) -> None:
    """Where a conversation was started: the chat, or `r1chat ask`."""
    conn.execute("ALTER TABLE conversations ADD COLUMN source TEXT NOT NULL DEFAULT 'chat'")


MIGRATIONS: dict[int, Migration] = {1: _create_v1, 2: _add_source_v2}
