"""Conversation history on real SQLite files: CRUD, FTS5 search, export, concurrency, damage."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from r1chat.config import paths
from r1chat.core.errors import R1ChatError
from r1chat.core.messages import Message
from r1chat.core.titles import from_stats
from r1chat.history.records import fts_query, make_title
from r1chat.history.schema import SCHEMA_VERSION
from r1chat.history.store import History

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    """A fake clock that ticks one second per call, so ordering never ties."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "history.sqlite3"


@pytest.fixture
def history(db: Path) -> Iterator[History]:
    h = History(db, clock=Clock())
    yield h
    h.close()


def fts_ok(h: History) -> None:
    """FTS5's own check that the index matches the messages table."""
    h._conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")


# -- CRUD --------------------------------------------------------------------------------


def test_roundtrip_of_every_field(history: History) -> None:
    cid = history.new_conversation(model="r1:7b")
    uid = history.add_message(cid, "user", "What is 2+2?")
    aid = history.add_message(
        cid, "assistant", "", model="r1:7b", sampling={"temperature": 0.6, "top_p": 0.95}
    )
    stats = {"thinking_s": 12.34, "thinking_tokens": 402, "answer_tokens": 9}
    assert history.update_message(aid, reasoning="Two plus two.", content="**4**")
    assert history.update_message(
        aid, stats=stats, finish_reason="stop", thinking_stopped_by="budget"
    )

    user, reply = history.messages(cid)
    assert (user.id, user.role, user.content, user.reasoning) == (uid, "user", "What is 2+2?", "")
    assert user.sampling is None and user.stats is None and user.finish_reason is None
    assert reply.id == aid and reply.conversation_id == cid and reply.role == "assistant"
    assert (reply.content, reply.reasoning, reply.model) == ("**4**", "Two plus two.", "r1:7b")
    assert reply.sampling == {"temperature": 0.6, "top_p": 0.95}
    assert reply.stats == stats
    assert (reply.finish_reason, reply.thinking_stopped_by) == ("stop", "budget")
    assert reply.updated_at > reply.created_at
    assert history.message(aid) == reply
    assert history.message(9999) is None
    assert [m.to_message() for m in (user, reply)] == [
        Message("user", "What is 2+2?"),
        Message("assistant", "**4**"),
    ]

    c = history.conversation(cid)
    assert (c.id, c.title, c.model, c.turns) == (cid, "What is 2+2?", "r1:7b", 1)
    assert c.updated_at == reply.updated_at


def test_update_leaves_unnamed_fields_alone(history: History) -> None:
    cid = history.new_conversation()
    mid = history.add_message(cid, "assistant", "answer", reasoning="thought")
    history.update_message(mid, stats={"total_s": 1.0})
    m = history.message(mid)
    assert m is not None and (m.content, m.reasoning) == ("answer", "thought")
    history.update_message(mid, content="")  # an empty string is a value, not "no change"
    m = history.message(mid)
    assert m is not None and (m.content, m.reasoning, m.stats) == ("", "thought", {"total_s": 1.0})


def test_missing_ids(history: History) -> None:
    with pytest.raises(R1ChatError, match="no conversation 42"):
        history.conversation(42)
    with pytest.raises(R1ChatError, match="no conversation 42"):
        history.add_message(42, "user", "hi")
    with pytest.raises(R1ChatError, match="no conversation 42"):
        history.rename(42, "x")
    with pytest.raises(R1ChatError, match="no conversation 42"):
        history.delete(42)
    with pytest.raises(R1ChatError, match="no conversation 42"):
        history.export_markdown(42)
    assert history.update_message(42, content="x") is False
    assert history.delete_message(42) is False
    assert history.messages(42) == []
    with pytest.raises(ValueError):
        history.add_message(history.new_conversation(), "system", "x")  # type: ignore[arg-type]


def test_title_from_first_prompt(history: History) -> None:
    cid = history.new_conversation()
    assert history.conversation(cid).title == ""
    assert history.conversation(cid).display_title == "(untitled)"
    history.add_message(cid, "user", "\n\n  Explain   the\tKV cache  \nin detail please")
    history.add_message(cid, "user", "second prompt")
    assert history.conversation(cid).title == "Explain the KV cache"

    long = history.new_conversation()
    history.add_message(long, "user", "word " * 40)
    title = history.conversation(long).title
    assert title.endswith("…") and len(title) <= 60

    named = history.new_conversation(title="  My title ")
    history.add_message(named, "user", "ignored for the title")
    assert history.conversation(named).title == "My title"

    reply_first = history.new_conversation()
    history.add_message(reply_first, "assistant", "hello")
    assert history.conversation(reply_first).title == ""
    history.add_message(reply_first, "user", "then a prompt")
    assert history.conversation(reply_first).title == "then a prompt"


def test_make_title() -> None:
    assert make_title("") == ""
    assert make_title("short") == "short"
    assert make_title("a" * 200) == "a" * 59 + "…"
    cut = make_title("The quick brown fox jumps over the lazy dog, again and again and again.")
    assert cut == "The quick brown fox jumps over the lazy dog, again and…"
    assert len(cut) <= 60


def test_list_newest_first_by_update(history: History) -> None:
    ids = [history.new_conversation(title=f"c{i}") for i in range(5)]
    assert [c.id for c in history.list_conversations()] == ids[::-1]
    mid = history.add_message(ids[0], "user", "bump")
    assert history.list_conversations()[0].id == ids[0]
    history.add_message(ids[2], "user", "bump")
    assert [c.id for c in history.list_conversations()][:2] == [ids[2], ids[0]]
    history.update_message(mid, content="bumped again")
    assert [c.id for c in history.list_conversations(limit=2)] == [ids[0], ids[2]]
    history.rename(ids[4], "renamed")
    listed = history.list_conversations()
    assert listed[0].id == ids[4] and listed[0].title == "renamed"
    assert {c.id: c.turns for c in listed} == {
        ids[0]: 1,
        ids[1]: 0,
        ids[2]: 1,
        ids[3]: 0,
        ids[4]: 0,
    }


def test_delete_cascades(history: History, db: Path) -> None:
    keep = history.new_conversation()
    history.add_message(keep, "user", "keep this alpaca")
    gone = history.new_conversation()
    history.add_message(gone, "user", "remove this llama")
    history.add_message(gone, "assistant", "llama answer", reasoning="llama thoughts")
    history.delete(gone)
    assert [c.id for c in history.list_conversations()] == [keep]
    assert history.messages(gone) == []
    assert history.search("llama") == []
    assert [h.conversation_id for h in history.search("alpaca")] == [keep]
    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT count(*) FROM messages").fetchone()[0] == 1
    fts_ok(history)


def test_delete_message_for_regenerate(history: History) -> None:
    cid = history.new_conversation()
    history.add_message(cid, "user", "prompt")
    first = history.add_message(cid, "assistant", "first zebra reply")
    assert history.delete_message(first)
    second = history.add_message(cid, "assistant", "second reply")
    assert [m.id for m in history.messages(cid)][1:] == [second]
    assert history.search("zebra") == []
    fts_ok(history)


def test_usable_from_a_worker_thread(history: History) -> None:
    cid = history.new_conversation()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for i in range(50):
                mid = history.add_message(cid, "assistant", "")
                history.update_message(mid, content=f"reply {i}")
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(50):
        history.list_conversations()
        history.search("reply")
    for t in threads:
        t.join()
    assert errors == []
    assert len(history.messages(cid)) == 200


def test_default_path_is_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("R1CHAT_HOME", str(tmp_path / "home"))
    with History() as h:
        h.new_conversation("x")
        assert h.path == paths.history_db()
    assert paths.history_db().is_file()
    assert paths.history_db().parent == tmp_path / "home" / "data"


def test_wal_and_schema_version(history: History, db: Path) -> None:
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    History(db).close()  # reopening an up-to-date file changes nothing
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


# -- search ------------------------------------------------------------------------------


@pytest.fixture
def searchable(history: History) -> dict[str, int]:
    cid = history.new_conversation()
    prompt = history.add_message(cid, "user", "How do pelicans fly?")
    reply = history.add_message(
        cid,
        "assistant",
        "Pelicans soar on thermals.",
        reasoning="The user asks about birds. Think about aerodynamics and gliding.",
    )
    other = history.new_conversation()
    history.add_message(other, "user", 'Café crème recipe, with foo"bar and C++ AND * stuff')
    return {"cid": cid, "prompt": prompt, "reply": reply, "other": other}


def test_search_prompts_answers_and_reasoning(history: History, searchable: dict[str, int]) -> None:
    in_prompt = history.search("fly")
    assert [(h.message_id, h.role) for h in in_prompt] == [(searchable["prompt"], "user")]
    assert in_prompt[0].title == "How do pelicans fly?"
    assert in_prompt[0].snippet == "How do pelicans [fly]?"
    assert [h.message_id for h in history.search("thermals")] == [searchable["reply"]]
    in_reasoning = history.search("aerodynamics")
    assert [h.message_id for h in in_reasoning] == [searchable["reply"]]
    assert "[aerodynamics]" in in_reasoning[0].snippet
    assert {h.message_id for h in history.search("pelicans")} == {
        searchable["prompt"],
        searchable["reply"],
    }
    # every word must match; the last one is a prefix
    assert [h.message_id for h in history.search("pelicans therm")] == [searchable["reply"]]
    assert history.search("pelicans penguins") == []
    # case and accents
    assert [h.conversation_id for h in history.search("CAFE")] == [searchable["other"]]
    # custom markers
    hit = history.search("gliding", mark=("<b>", "</b>"))[0]
    assert "<b>gliding</b>" in hit.snippet and "\n" not in hit.snippet


def test_search_follows_updates_and_deletes(history: History, searchable: dict[str, int]) -> None:
    reply = searchable["reply"]
    history.update_message(reply, reasoning="Now thinking about hydrodynamics instead.")
    assert history.search("aerodynamics") == []
    assert [h.message_id for h in history.search("hydrodynamics")] == [reply]
    assert [h.message_id for h in history.search("thermals")] == [reply]  # content unchanged
    history.update_message(reply, content="They flap.")
    assert history.search("thermals") == []
    assert [h.message_id for h in history.search("flap")] == [reply]
    history.update_message(reply, stats={"total_s": 2.0})  # not an indexed column
    assert [h.message_id for h in history.search("flap hydrodynamics")] == [reply]
    history.delete_message(reply)
    assert history.search("flap") == [] and history.search("hydrodynamics") == []
    fts_ok(history)


NASTY = [
    'foo"bar',
    '"',
    '""',
    "AND",
    "OR",
    "NOT",
    "a AND",
    "AND b",
    "NEAR(",
    "NEAR(a b)",
    "*",
    "a*",
    "*a",
    "(",
    ")",
    "a:b",
    "content:x",
    "reasoning: y",
    "^x",
    "-x",
    "+",
    "'",
    "\\",
    "{a b}",
    "a OR b NOT c",
    "",
    "   ",
    "\x00",
    "ünïcödé ✓ 漢字",
    "C++",
]


@pytest.mark.parametrize("query", NASTY)
def test_search_never_raises_on_user_text(
    history: History, searchable: dict[str, int], query: str
) -> None:
    history.search(query)


def test_search_treats_operators_as_words(history: History, searchable: dict[str, int]) -> None:
    other = searchable["other"]
    assert [h.conversation_id for h in history.search('foo"bar')] == [other]
    assert [h.conversation_id for h in history.search("AND stuff")] == [other]
    assert [h.conversation_id for h in history.search("C++ stuff")] == [other]
    assert history.search("*") == []
    assert history.search("") == []


def test_fts_query_quotes_every_word() -> None:
    assert fts_query('foo"bar AND') == '"foo""bar" "AND"*'
    assert fts_query("  * - ( ") == ""
    assert fts_query("a\x00b") == '"a" "b"*'


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(max_size=40))
def test_search_any_text(history: History, query: str) -> None:
    history.search(query)


# -- export ------------------------------------------------------------------------------


def _conversation_for_export(history: History) -> int:
    cid = history.new_conversation(model="r1:7b")
    history.add_message(cid, "user", "What is 2+2?")
    aid = history.add_message(cid, "assistant", "", model="r1:7b", sampling={"temperature": 0.6})
    history.update_message(
        aid,
        reasoning="Two plus two.\n</details> is not the end",
        content="The answer is **4**.",
        stats={"thinking_s": 12.34, "thinking_tokens": 402},
        finish_reason="stop",
    )
    history.add_message(cid, "user", "And 3+3?")
    bid = history.add_message(cid, "assistant", "", model="r1:7b")
    history.update_message(bid, reasoning="Three and three", finish_reason="length")
    return cid


def test_export_markdown(history: History) -> None:
    cid = _conversation_for_export(history)
    md = history.export_markdown(cid)
    assert md.startswith("# What is 2+2?\n")
    assert "r1:7b" in md.splitlines()[2]
    assert md.count("## You") == 2 and md.count("## Assistant (r1:7b)") == 2
    first = md.index("<details><summary>Thought for 12.3s · 402 tokens</summary>")
    assert md.index("What is 2+2?", 5) < first < md.index("Two plus two.") < md.index("</details>")
    assert md.index("</details>") < md.index("The answer is **4**.")
    assert "&lt;/details> is not the end" in md  # reasoning cannot close the block early
    assert "<details><summary>Reasoning</summary>" in md  # no stats for the second reply
    assert "*(Cut: the token limit (max tokens or the context) was reached)*" in md
    assert md.count("<details>") == md.count("</details>") == 2
    assert md.endswith("\n") and not md.endswith("\n\n")


def test_thought_summary() -> None:
    assert from_stats(None) == "Reasoning"
    assert from_stats({"thinking_s": 1.25, "thinking_tokens": 40}) == (
        "Thought for 1.2s · 40 tokens"
    )
    assert from_stats({"thinking_tokens": 40}, "budget") == (
        "Reasoning · 40 tokens · cut by the thinking budget"
    )
    assert from_stats({"thinking_s": 3, "thinking_stopped_by": "loop"}) == (
        "Thought for 3.0s · cut by the loop guard"
    )


def test_export_json(history: History) -> None:
    cid = _conversation_for_export(history)
    data = history.export_json(cid)
    assert json.loads(json.dumps(data)) == data
    assert data["id"] == cid and data["title"] == "What is 2+2?" and data["model"] == "r1:7b"
    assert data["created_at"].endswith("+00:00")
    roles = [m["role"] for m in data["messages"]]
    assert roles == ["user", "assistant", "user", "assistant"]
    reply = data["messages"][1]
    assert reply["reasoning"].startswith("Two plus two.")
    assert reply["content"] == "The answer is **4**."
    assert reply["sampling"] == {"temperature": 0.6}
    assert reply["stats"] == {"thinking_s": 12.34, "thinking_tokens": 402}
    assert reply["finish_reason"] == "stop"
    with pytest.raises(R1ChatError, match="no conversation 999"):
        history.export_json(999)


# -- several connections and processes ---------------------------------------------------


def test_incremental_update_visible_to_another_connection(db: Path) -> None:
    writer = History(db)
    reader = History(db)
    try:
        cid = writer.new_conversation()
        mid = writer.add_message(cid, "assistant", "")
        text = ""
        for word in ["Let", " me", " think", " hard"]:
            text += word
            writer.update_message(mid, reasoning=text)
            assert reader.messages(cid)[0].reasoning == text
            assert [h.message_id for h in reader.search(word.strip())] == [mid]
        # A plain sqlite3 connection sees it too (the data is in the file, not a cache).
        with sqlite3.connect(db) as raw:
            row = raw.execute("SELECT reasoning FROM messages WHERE id = ?", (mid,)).fetchone()
        assert row == ("Let me think hard",)
    finally:
        writer.close()
        reader.close()


# Prepended to every script: `barrier(name)` says the process is ready, then waits for
# the test to create "go", so that the processes really run at the same time.
BARRIER = """
    import pathlib, sys, time
    def barrier(name):
        folder = pathlib.Path(sys.argv[1]).parent
        (folder / f"ready-{name}").touch()
        while not (folder / "go").exists():
            time.sleep(0.005)
"""


def _run_python(code: str, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(BARRIER) + textwrap.dedent(code), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


KILLED_WRITER = """
    import os, signal, sys
    from r1chat.history.store import History
    h = History(sys.argv[1])
    cid = h.new_conversation()
    h.add_message(cid, "user", "prompt before the kill")
    mid = h.add_message(cid, "assistant", "")
    text = ""
    for i in range(20):
        text += f"step{i} "
        h.update_message(mid, reasoning=text)
    sig = getattr(signal, "SIGKILL", None)
    if sig is not None:
        os.kill(os.getpid(), sig)
    os._exit(9)  # no close(), no checkpoint, like a kill
"""


def test_killed_mid_reply_keeps_last_update(db: Path) -> None:
    proc = _run_python(KILLED_WRITER, str(db))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "Traceback" not in err
    with History(db) as h:
        (c,) = h.list_conversations()
        prompt, reply = h.messages(c.id)
        assert prompt.content == "prompt before the kill"
        assert reply.reasoning == "".join(f"step{i} " for i in range(20))
        assert [m.message_id for m in h.search("step19")] == [reply.id]


WRITER = """
    from r1chat.history.store import History
    path, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    h = History(path)
    barrier(name)
    for i in range(n):
        cid = h.new_conversation(model=name)
        h.add_message(cid, "user", f"{name} prompt {i}")
        mid = h.add_message(cid, "assistant", "", model=name)
        h.update_message(mid, reasoning=f"{name} thinking {i}")
        h.update_message(mid, content=f"{name} answer {i}", finish_reason="stop")
        if i % 10 == 0:
            h.list_conversations()
            h.search(name)
    h.close()
    print("ok", name)
"""

READER = """
    from r1chat.history.store import History
    h = History(sys.argv[1])
    barrier("reader")
    for _ in range(int(sys.argv[2])):
        for c in h.list_conversations(limit=5):
            h.messages(c.id)
        h.search("prompt")
    print("ok reader")
"""


def test_two_processes_write_at_once(db: Path) -> None:
    n = 200  # each writer: 1,000 write transactions, interleaved with the other's
    History(db).close()
    procs = [_run_python(WRITER, str(db), name, str(n)) for name in ("alpha", "beta")]
    procs.append(_run_python(READER, str(db), "100"))
    deadline = time.monotonic() + 120
    while len(list(db.parent.glob("ready-*"))) < 3 and time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.01)
    (db.parent / "go").touch()
    results = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
        assert out.startswith("ok") and err == ""

    with History(db) as h:
        conversations = h.list_conversations(limit=10_000)
        assert len(conversations) == 2 * n
        for name in ("alpha", "beta"):
            mine = [c for c in conversations if c.model == name]
            assert len(mine) == n
            prompts = set()
            for c in mine:
                prompt, reply = h.messages(c.id)
                i = prompt.content.rsplit(" ", 1)[1]
                prompts.add(int(i))
                assert c.title == f"{name} prompt {i}" and c.turns == 1
                assert reply.reasoning == f"{name} thinking {i}"
                assert (reply.content, reply.finish_reason) == (f"{name} answer {i}", "stop")
            assert prompts == set(range(n))
            assert len(h.search(f"{name} answer", limit=n + 1)) == n
        fts_ok(h)


# -- damaged or foreign files ------------------------------------------------------------


def test_corrupt_file_is_a_clear_error(db: Path) -> None:
    garbage = bytes(range(256)) * 64
    db.write_bytes(garbage)
    with pytest.raises(R1ChatError) as info:
        History(db)
    message = str(info.value)
    assert str(db) in message and "not a database" in message and "\n" not in message
    assert db.read_bytes() == garbage  # nothing overwritten


def test_newer_schema_is_refused_untouched(db: Path) -> None:
    with History(db) as h:
        h.add_message(h.new_conversation(), "user", "precious")
    with sqlite3.connect(db) as raw:
        raw.execute("PRAGMA user_version = 99")
    with pytest.raises(R1ChatError, match="newer r1chat"):
        History(db)
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 99
        assert raw.execute("SELECT content FROM messages").fetchall() == [("precious",)]


def test_unopenable_path_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(R1ChatError, match="cannot open history"):
        History(folder)


def test_closed_history_is_a_clear_error(db: Path) -> None:
    h = History(db)
    h.close()
    with pytest.raises(R1ChatError, match="closed"):
        h.list_conversations()


def test_a_schema_1_file_is_migrated_in_place(tmp_path: Path) -> None:
    """Conversations saved before `ask` was logged keep their rows and read as chats."""
    from r1chat.history.schema import MIGRATIONS

    db = tmp_path / "old.sqlite3"
    with sqlite3.connect(db) as raw:
        MIGRATIONS[1](raw)
        raw.execute(
            "INSERT INTO conversations (title, model, created_at, updated_at) "
            "VALUES ('old chat', 'r1:7b', 1, 1)"
        )
        raw.execute("PRAGMA user_version = 1")
    with History(db) as h:
        [c] = h.list_conversations()
        assert (c.title, c.source) == ("old chat", "chat")
        new = h.new_conversation("an ask", "m", source="ask")
        assert h.conversation(new).source == "ask"
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_ids_are_never_reused(history: History) -> None:
    first = history.new_conversation("first", "m")
    second = history.new_conversation("second", "m")
    reply = history.add_message(second, "assistant", "hi")
    history.delete_message(reply)
    history.delete(second)
    third = history.new_conversation("third", "m")
    assert third > second > first  # the deleted conversation's id stays unused
    assert history.add_message(third, "assistant", "hello") > reply
    with pytest.raises(R1ChatError, match=f"no conversation {second}"):
        history.conversation(second)


def test_a_schema_2_file_keeps_its_rows_ids_and_search(tmp_path: Path) -> None:
    """Upgrading to AUTOINCREMENT ids rebuilds both tables: nothing is lost or renumbered,
    search still finds old text, and deleting a chat still deletes its messages."""
    from r1chat.history.schema import MIGRATIONS

    db = tmp_path / "v2.sqlite3"
    with sqlite3.connect(db) as raw:
        MIGRATIONS[1](raw)
        MIGRATIONS[2](raw)
        for cid, title in ((3, "pelicans"), (7, "thermals")):
            raw.execute(
                "INSERT INTO conversations (id, title, model, created_at, updated_at) "
                "VALUES (?, ?, 'r1:7b', 1, 1)",
                (cid, title),
            )
            raw.execute(
                "INSERT INTO messages (conversation_id, role, content, reasoning, created_at, "
                "updated_at) VALUES (?, 'user', ?, 'soaring birds', 1, 1)",
                (cid, f"how do {title} work"),
            )
        raw.execute("PRAGMA user_version = 2")
    with History(db) as h:
        assert [c.id for c in h.list_conversations()] == [7, 3]
        assert {hit.conversation_id for hit in h.search("soaring")} == {3, 7}
        h.delete(7)
        assert h.new_conversation("new", "m") == 8  # after the highest id the file had
        assert [m.content for m in h.messages(3)] == ["how do pelicans work"]
    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT count(*) FROM messages").fetchone()[0] == 1  # cascaded
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
