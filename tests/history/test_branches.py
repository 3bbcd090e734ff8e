"""Branches in History: an edited prompt or a regenerated reply is a version beside the
old one; the branch shown is remembered; export, show, turns and search follow it; a
database written by the release before branches migrates in place with nothing lost."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from r1chat.core.errors import R1ChatError
from r1chat.history.schema import SCHEMA_VERSION
from r1chat.history.store import History

V3 = Path(__file__).resolve().parents[1] / "fixtures" / "history-v3.sqlite3"
"""Written by r1chat at schema 3 (40a7aec, through `History`): a deleted conversation,
a chat of three exchanges with reasoning and stats, an `ask` whose reply was cut off."""


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    h = History(tmp_path / "history.sqlite3")
    yield h
    h.close()


def exchange(h: History, cid: int, prompt: str, answer: str, **parent: int | None) -> int:
    """A prompt after `parent` (default: the branch shown) and its answer; the reply id."""
    _, reply = h.add_exchange(cid, prompt, "m", {}, **parent)  # type: ignore[arg-type]
    h.update_message(reply, content=answer, finish_reason="stop")
    return reply


def shown(h: History, cid: int) -> list[str]:
    return [m.content for m in h.messages(cid)]


def test_an_edited_prompt_is_a_version_beside_the_old_one(history: History) -> None:
    cid = history.new_conversation("", "m")
    first = exchange(history, cid, "q1", "a1")
    exchange(history, cid, "q2", "a2")
    exchange(history, cid, "q3", "a3")
    exchange(history, cid, "q2 edited", "a2'", parent=first)  # the second prompt, edited
    assert shown(history, cid) == ["q1", "a1", "q2 edited", "a2'"]
    branch = history.branch(cid)
    assert [branch.versions[m.id] for m in branch.messages] == [(1, 1), (1, 1), (2, 2), (1, 1)]
    assert history.conversation(cid).turns == 2  # the turns of the branch shown

    old = next(m.id for m in history.messages(cid) if m.content == "q2 edited") - 4
    history.show(cid, old)  # back to the first version: to its end
    assert shown(history, cid) == ["q1", "a1", "q2", "a2", "q3", "a3"]
    assert history.conversation(cid).turns == 3
    history.close()
    with History(history.path) as again:  # remembered
        assert shown(again, cid)[-1] == "a3"
        exported = again.export_markdown(cid)
        assert "q3" in exported and "q2 edited" not in exported
        assert [m["content"] for m in again.export_json(cid)["messages"]][-1] == "a3"


def test_regenerate_keeps_every_answer(history: History) -> None:
    cid = history.new_conversation("", "m")
    exchange(history, cid, "q", "first")
    prompt = history.messages(cid)[0].id
    for answer in ("second", "third"):
        reply = history.add_message(cid, "assistant", "", parent=prompt)
        history.update_message(reply, content=answer)
    branch = history.branch(cid)
    assert [m.content for m in branch.messages] == ["q", "third"]
    assert branch.version(branch.messages[-1].id) == (3, 3)
    rows = [m.id for m in history.messages(cid)]
    history.show(cid, rows[-1] - 2)
    assert shown(history, cid) == ["q", "first"]
    assert history.search("second")  # every version stays searchable


def test_appending_follows_the_branch_shown(history: History) -> None:
    cid = history.new_conversation("", "m")
    first = exchange(history, cid, "q1", "a1")
    exchange(history, cid, "q2", "a2")
    exchange(history, cid, "other q2", "b2", parent=first)
    history.show(cid, history.messages(cid)[-1].id - 3)  # the first q2
    history.add_message(cid, "user", "q3")  # as `ask -c` appends
    assert shown(history, cid) == ["q1", "a1", "q2", "a2", "q3"]


def test_deleting_the_end_shows_the_branch_before_it(history: History) -> None:
    cid = history.new_conversation("", "m")
    first = exchange(history, cid, "q1", "a1")
    exchange(history, cid, "q2", "a2")
    prompt, reply = history.add_exchange(cid, "q2 edited", "m", {}, parent=first)
    history.delete_message(reply)
    history.delete_message(prompt)  # an edit whose reply never started
    assert shown(history, cid) == ["q1", "a1", "q2", "a2"]
    with pytest.raises(R1ChatError, match="no message 999"):
        history.show(cid, 999)


def test_a_history_written_before_branches_migrates_in_place(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    shutil.copy(V3, db)
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 3
        before = raw.execute("SELECT * FROM messages ORDER BY id").fetchall()
        conversations = raw.execute("SELECT * FROM conversations ORDER BY id").fetchall()
    with History(db) as h:
        with sqlite3.connect(db) as raw:  # migrated: every column kept, one added
            parents = [None, 2, 3, 4, 5, 6, None, 8]
            assert raw.execute("SELECT * FROM messages ORDER BY id").fetchall() == [
                (*row, parent, None) for row, parent in zip(before, parents, strict=True)
            ]
            now = raw.execute("SELECT * FROM conversations ORDER BY id").fetchall()
            currents = [7, 9]
            assert now == [(*row, c) for row, c in zip(conversations, currents, strict=True)]
        listed = {c.id: c for c in h.list_conversations()}
        assert {cid: c.turns for cid, c in listed.items()} == {2: 3, 3: 1}
        assert [m.id for m in h.messages(2)] == [m[0] for m in before if m[1] == 2]
        assert [m.parent_id for m in h.messages(2)] == [None, 2, 3, 4, 5, 6]
        assert h.search("thermals")  # the search index came through
        new = exchange(h, 2, "and an albatross?", "Further still.")  # goes on from the end
        assert h.messages(2)[-1].id == new and h.branch(2).versions[new] == (1, 1)
        assert new > 9 and h.new_conversation("x") > 3  # ids are still never reused
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
