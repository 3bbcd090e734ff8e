"""Saving a reply while the disk is full: the model host on threads with real llama.cpp and real
SQLite, its database capped with `PRAGMA max_page_count` (SQLite then fails writes with
"database or disk is full", exactly as on a full disk)."""

from __future__ import annotations

import queue
import time
from pathlib import Path

from r1chat.config.settings import Settings
from r1chat.core.events import Done
from r1chat.history.store import History
from r1chat.host.commands import Load, Model, Reply, Start
from r1chat.host.model_host import ModelHost
from r1chat.host.outcomes import Item, JobEnded, Loaded, SaveNotice
from r1chat.launch.engines import open_engine
from r1chat.session.dialogue import Dialogue
from tests.fixtures.scripted import ScriptedModel

Inbox = queue.SimpleQueue[tuple[int, Item]]


def disk(history: History, *, full: bool) -> None:
    """Let the database grow no further (full) or freely again."""
    conn = history._conn  # the connection the engine thread writes through
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages if full else 1 << 30}")


def until(inbox: Inbox, want: type, timeout: float = 60) -> list[tuple[int, Item]]:
    seen: list[tuple[int, Item]] = []
    deadline = time.monotonic() + timeout
    while not any(isinstance(item, want) for _, item in seen):
        seen.append(inbox.get(timeout=max(0.01, deadline - time.monotonic())))
    return seen


def start(tmp_path: Path, model: ScriptedModel) -> tuple[History, Inbox, ModelHost, int]:
    history = History(tmp_path / "history.sqlite3")
    inbox: Inbox = queue.SimpleQueue()
    engine = ModelHost.in_thread(inbox.put, Start(open_engine), history=history)
    settings = Settings(model=str(model.path), threads=1, n_ctx=8192)
    loaded = Model(settings)
    engine.send(Load(engine.next_id(), loaded))
    assert any(isinstance(item, Loaded) for _, item in until(inbox, JobEnded))
    conversation = Dialogue(history)
    exchange = conversation.add_prompt("Plan it.", "scripted", settings)
    reply = conversation.start_reply(exchange, "scripted", settings)
    disk(history, full=True)
    request = conversation.request(settings)
    engine.send(Reply(engine.next_id(), loaded, request, settings.guards, save_to=reply))
    return history, inbox, engine, reply


def notices(items: list[tuple[int, Item]]) -> list[str]:
    return [item.message for _, item in items if isinstance(item, SaveNotice)]


def test_an_unsaved_reply_lands_once_there_is_room(tmp_path: Path, long_model: ScriptedModel):
    history, inbox, engine, reply = start(tmp_path, long_model)
    try:
        seen = until(inbox, JobEnded)
        [done] = [item for _, item in seen if isinstance(item, Done)]
        assert notices(seen) == [
            f"could not save a reply: history {history.path}: database or disk is full; it is "
            "kept and saving is retried every second"
        ]  # said once, though every save of the reply failed
        assert history.message(reply).content == ""
        disk(history, full=False)  # space was freed
        assert notices(until(inbox, SaveNotice)) == [
            "the reply that could not be saved is saved now"
        ]
        saved = history.message(reply)
        assert (saved.content, saved.reasoning) == (done.content, done.reasoning)
        assert saved.finish_reason == "stop" and saved.stats is not None
    finally:
        engine.stop()
        history.close()


def test_what_never_landed_is_named_at_exit(tmp_path: Path, long_model: ScriptedModel):
    history, inbox, engine, _ = start(tmp_path, long_model)
    try:
        until(inbox, JobEnded)
        engine.stop()  # the chat quits with the disk still full
        seen: list[tuple[int, Item]] = []
        while not inbox.empty():
            seen.append(inbox.get())
        lost = [n for n in notices(seen) if n.startswith("lost")]
        answer, reasoning = len(long_model.answer), len(long_model.reasoning.strip())
        assert lost == [
            f"lost from the history: a reply ({answer} characters of answer, {reasoning} of "
            "reasoning) that could not be saved"
        ]
    finally:
        history.close()
