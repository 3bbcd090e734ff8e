"""A conversation's messages as a tree (pure functions over its rows, oldest first).

Each message follows its parent; messages with the same parent and role are versions of
one turn (an edited prompt, a regenerated reply). The branch shown runs from a first
prompt to the conversation's current leaf.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from r1chat.history.records import Branch, StoredMessage


def _children(rows: Sequence[StoredMessage]) -> dict[int | None, list[StoredMessage]]:
    known = {m.id for m in rows}
    out: dict[int | None, list[StoredMessage]] = defaultdict(list)
    for m in rows:
        out[m.parent_id if m.parent_id in known else None].append(m)
    return out


def _versions(kids: dict[int | None, list[StoredMessage]], m: StoredMessage) -> list[int]:
    parent = m.parent_id if m.parent_id in kids else None  # (a lost parent: a first one)
    return [k.id for k in kids.get(parent, []) if k.role == m.role] or [m.id]


def branch(rows: Sequence[StoredMessage], current: int | None) -> Branch:
    """The branch ending at `current` (at the newest message when it is gone)."""
    by_id = {m.id: m for m in rows}
    leaf = current if current in by_id else (rows[-1].id if rows else None)
    path: list[StoredMessage] = []
    while leaf is not None and leaf in by_id and len(path) <= len(rows):
        path.append(by_id[leaf])
        leaf = by_id[leaf].parent_id
    path.reverse()
    kids = _children(rows)
    versions = {}
    for m in path:
        ids = _versions(kids, m)
        versions[m.id] = (ids.index(m.id) + 1 if m.id in ids else 1, len(ids))
    return Branch(path, versions)


def leaf_under(rows: Sequence[StoredMessage], message_id: int) -> int:
    """The end of the branch through `message_id`: its newest child, that one's, …"""
    kids = _children(rows)
    seen = {message_id}
    while (under := kids.get(message_id)) and under[-1].id not in seen:
        message_id = under[-1].id
        seen.add(message_id)
    return message_id


def sibling(rows: Sequence[StoredMessage], message_id: int, step: int) -> int | None:
    """The version `step` places from `message_id` (None past the first or the last)."""
    m = next((r for r in rows if r.id == message_id), None)
    if m is None:
        return None
    ids = _versions(_children(rows), m)
    at = ids.index(m.id) + step
    return ids[at] if 0 <= at < len(ids) else None
