"""A history damaged in the middle (pages a disk lost): noticed when it opens, said once,
never written into; `history recover` copies out every row it can still read, keeping ids.
And a full disk never leaves a prompt without the reply row that records its model."""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from r1chat.config import paths
from r1chat.config.settings import Settings
from r1chat.core.errors import R1ChatError
from r1chat.history.damage import DamagedHistory
from r1chat.history.pages import CUT, scan
from r1chat.history.recover import RECOVERED
from r1chat.history.store import History
from r1chat.session.dialogue import Dialogue, with_its_model
from tests.fixtures.cli import one_error_line, r1chat
from tests.fixtures.scripted import ScriptedModel

PAGE = 4096
_LETTERS = random.Random(1)
WORDS = [  # (fixed: where records fall on pages must not change with some other file)
    "".join(_LETTERS.choice("etaoinshrdlucmfwyp") for _ in range(_LETTERS.randint(1, 9)))
    for _ in range(600)
]


def write_history(path: Path, conversations: int = 45, long_every: int = 0) -> None:
    """`conversations` of two exchanges; with `long_every`, every so many replies reason
    for 20,000 words (a chain of overflow pages), saved as the chat saves them while they
    stream (the answer first, then the reasoning as it grows)."""
    rng = random.Random(2)
    history = History(path)
    for i in range(conversations):
        cid = history.new_conversation(f"conversation {i}", "r1:7b")
        for j in range(2):
            history.add_message(cid, "user", f"question {i}.{j}")
            reply = history.add_message(cid, "assistant", "", model="r1:7b")
            long = long_every and (2 * i + j) % long_every == 0
            answer = " ".join(rng.choice(WORDS) for _ in range(200))
            reasoning = " ".join(rng.choice(WORDS) for _ in range(20000 if long else 300))
            history.update_message(reply, content=answer)
            history.update_message(
                reply, reasoning=reasoning, stats={"total_s": 1.0}, finish_reason="stop"
            )
    history.close()


def damage(path: Path, pages: int = 10, seed: int = 5) -> None:
    """Overwrite `pages` random pages (never the first: a file with no header is another
    case) with noise, as a failing disk would."""
    count = path.stat().st_size // PAGE
    rng = random.Random(seed)
    with path.open("r+b") as f:
        for page in rng.sample(range(2, count), pages):
            f.seek(page * PAGE)
            f.write(rng.randbytes(PAGE))


def rows(path: Path, table: str) -> dict[int, tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return {r[0]: tuple(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY id")}
    finally:
        conn.close()


@pytest.fixture
def damaged() -> tuple[Path, Path]:
    """The user's history, damaged in ten pages; and a clean copy of it as it was."""
    db = paths.history_db()
    db.parent.mkdir(parents=True)
    write_history(db)
    clean = db.with_name("clean.sqlite3")
    shutil.copy(db, clean)
    damage(db)
    return db, clean


def test_damage_is_noticed_when_the_history_opens(damaged: tuple[Path, Path]) -> None:
    db, _ = damaged
    with pytest.raises(DamagedHistory, match="is damaged"):
        History(db)
    listed = r1chat("history")
    assert listed.returncode == 1
    assert "`r1chat history recover` copies what it still holds" in one_error_line(listed.stderr)


def test_ask_answers_says_so_once_and_leaves_the_damaged_file_alone(
    damaged: tuple[Path, Path], answer_model: ScriptedModel
) -> None:
    db, _ = damaged
    before = db.read_bytes()
    out = r1chat("ask", "-m", str(answer_model.path), "--threads", "1", "What is 2+2?")
    assert out.returncode == 0 and out.stdout == answer_model.answer + "\n"
    [warning] = out.stderr.splitlines()
    assert warning.startswith("warning: this ask is not saved in the history: the history file ")
    assert db.read_bytes() == before


def readable(damaged: Path, table: str, ids: list[int]) -> set[int]:
    """The ids whose row reads, asked one at a time."""
    conn = sqlite3.connect(f"file:{damaged}?mode=ro", uri=True)
    found = set()
    for i in ids:
        try:
            if conn.execute(f"SELECT * FROM {table} WHERE id = ?", (i,)).fetchone():
                found.add(i)
        except sqlite3.DatabaseError:
            pass
    conn.close()
    return found


def test_recover_keeps_every_row_it_can_read_with_its_id(damaged: tuple[Path, Path]) -> None:
    db, clean = damaged
    can_read = readable(db, "messages", list(rows(clean, "messages")))
    out = r1chat("history", "recover")
    assert out.returncode == 0, out.stderr
    [aside] = [
        p
        for p in db.parent.glob("history.sqlite3.corrupt-*")
        if p.suffix != ".sqlite3" and not p.name.endswith(("-wal", "-shm"))
    ]
    assert f"the damaged file is kept as {aside}" in out.stdout
    assert aside.read_bytes()[:16] == b"SQLite format 3\x00"
    was, now = rows(clean, "messages"), rows(db, "messages")
    assert set(now) == can_read and 0 < len(now) < len(was)  # all but what lost pages held
    assert out.stdout.startswith(f"recovered 45 conversations and {len(now)} messages")
    for mid, row in now.items():  # every column, the id included
        parent = was[mid][-2]
        if parent is not None and parent not in now:  # lost: it follows the one before it
            before = [m for m in now if m < mid and now[m][1] == row[1]]
            parent = max(before, default=None)
        assert row == (*was[mid][:-2], parent, was[mid][-1])
    conversations = rows(db, "conversations")
    assert set(conversations) == set(rows(clean, "conversations"))
    for cid, row in conversations.items():  # a conversation whose row was lost: rebuilt
        assert row[1] == f"conversation {cid - 1}" or row[1].endswith(RECOVERED)
    history = History(db)
    try:
        assert history.search("question")  # the full-text index was rebuilt
        new = history.new_conversation("after")
        assert new > max(rows(clean, "conversations"))  # ids are never given twice
    finally:
        history.close()
    assert r1chat("history", "recover").stdout.endswith("nothing to recover\n")


def capped(history: History, *, full: bool) -> None:
    """Let the database grow no further (a full disk: "database or disk is full")."""
    pages = history._conn.execute("PRAGMA page_count").fetchone()[0]
    history._conn.execute(f"PRAGMA max_page_count = {pages if full else 1 << 30}")


def test_a_prompt_is_saved_with_its_reply_row_or_not_at_all(tmp_path: Path) -> None:
    history = History(tmp_path / "history.sqlite3")
    settings = Settings(model="r1:1.5b", threads=1)
    conversation = Dialogue(history)
    conversation.add_prompt("First.", "r1:1.5b", settings)
    big = "x" * (64 << 10)  # more than the pages left
    capped(history, full=True)
    with pytest.raises(R1ChatError, match="full"):
        conversation.add_prompt(big, "r1:1.5b", settings)
    assert [m.content for m in history.messages(conversation.id or 0)] == ["First.", ""]
    capped(history, full=False)
    reopened = Dialogue.load(history, conversation.id or 0)
    again = with_its_model(Settings(model="r1:8b"), reopened, explicit=False)
    assert again.model == "r1:1.5b"  # `-c` goes on with the model that turn used
    history.close()
    os.remove(tmp_path / "history.sqlite3")


def cut_history(at: Callable[[bytes, dict[int, tuple[object, ...]]], int]) -> bytes:
    """The user's history (16 conversations, every fifth reply 20,000 words long), cut
    short at the offset `at(file, messages)` gives; what is left of the file."""
    db = paths.history_db()
    db.parent.mkdir(parents=True)
    write_history(db, conversations=16, long_every=5)
    clean = db.with_name("clean.sqlite3")
    shutil.copy(db, clean)
    with db.open("r+b") as f:
        f.truncate(at(db.read_bytes(), rows(clean, "messages")))
    return db.read_bytes()


def starts(row: tuple[object, ...]) -> bytes:
    """The first bytes of a message's text (its reasoning, if it has any)."""
    return str(row[4] or row[3]).encode()[:64]


def test_recover_reads_the_pages_of_a_history_cut_in_half() -> None:
    left = cut_history(lambda data, _: len(data) // 2)
    out = r1chat("history", "recover")
    assert out.returncode == 0, out.stderr
    db = paths.history_db()
    was, now = rows(db.with_name("clean.sqlite3"), "messages"), rows(db, "messages")
    held = {mid for mid, row in was.items() if starts(row) in left}
    assert held and held == set(now)  # every message the file still holds, and only those
    assert any(row[2] == "user" for row in now.values())
    for mid, row in now.items():  # every column, the id included
        if str(row[4]).endswith(CUT):  # its reasoning ran on into the lost half
            assert str(was[mid][4]).startswith(str(row[4]).removesuffix(CUT))
            assert row[:4] == was[mid][:4]
            continue
        parent = was[mid][-2]
        if parent is not None and parent not in now:  # lost: it follows the one before it
            before = [m for m in now if m < mid and now[m][1] == row[1]]
            parent = max(before, default=None)
        assert row == (*was[mid][:-2], parent, was[mid][-1])
    conversations = rows(db, "conversations")
    assert {row[1] for row in now.values()} <= set(conversations)
    assert out.stdout.startswith(
        f"recovered {len(conversations)} conversations and {len(now)} messages, with their ids"
    )
    history = History(db)  # a whole database again, its ids never given twice
    try:
        assert history.search("question")
        assert history.new_conversation("after") > 16
    finally:
        history.close()


def test_a_reply_whose_end_was_lost_comes_back_cut_and_counted() -> None:
    def after_a_long_replys_cell(data: bytes, messages: dict[int, tuple[object, ...]]) -> int:
        """Just past the page holding the cell of a long reply whose end is further on."""
        for row in messages.values():
            cell = data.index(str(row[3]).encode()[:64]) // PAGE  # (its answer starts it)
            end = data.index(str(row[4]).encode()[-64:]) // PAGE
            if len(str(row[4])) > 10000 and end > cell:
                return (cell + 1) * PAGE
        raise AssertionError("no long reply ends after its cell")

    cut_history(after_a_long_replys_cell)
    out = r1chat("history", "recover")
    assert out.returncode == 0, out.stderr
    db = paths.history_db()
    was, now = rows(db.with_name("clean.sqlite3"), "messages"), rows(db, "messages")
    [cut] = [mid for mid, row in now.items() if str(row[4]).endswith(CUT)]
    kept = str(now[cut][4]).removesuffix(CUT)
    # what its first page held (how much depends on the record's size): a part, never more
    assert 0 < len(kept) < len(str(was[cut][4])) and str(was[cut][4]).startswith(kept)
    assert now[cut][3] == was[cut][3]  # its answer, stored before the reasoning, is whole
    assert "(1 message cut short: its end was on lost pages" in out.stdout


def test_a_deleted_conversation_leaves_no_text_on_disk(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    write_history(db, conversations=16, long_every=5)
    history = History(db)
    gone = {row[3] for row in rows(db, "messages").values() if row[1] <= 8}
    for cid in range(1, 9):
        history.delete(cid)
    history.close()
    data = db.read_bytes()
    assert not [text for text in gone if str(text).encode() in data]


def test_pages_the_file_freed_are_not_read_back(tmp_path: Path) -> None:
    """Rows deleted by a writer that left their text on disk (an older r1chat: no secure
    delete) are on pages the freelist holds; the page scan leaves those alone."""
    db = tmp_path / "history.sqlite3"
    write_history(db, conversations=16, long_every=5)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA secure_delete = OFF")
    conn.execute("DELETE FROM messages WHERE conversation_id <= 8")
    conn.execute("DELETE FROM conversations WHERE id <= 8")
    conn.commit()
    conn.close()
    assert b"conversation 3" in db.read_bytes()  # (the title of 4, deleted: on a freed page)
    scanned = scan(db)
    assert set(scanned.conversations) == set(range(9, 17))
    assert {row["conversation_id"] for row in scanned.messages.values()} == set(range(9, 17))
