"""The chat's session (r1chat.session.chat) as a state machine: its runner on a thread
(`EngineThread`) with a scripted in-memory engine and real SQLite; no llama.cpp, no
Textual. The chat screen shows what `accept` returns; these tests read it directly."""

from __future__ import annotations

import itertools
import queue
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from r1chat.config.settings import Settings
from r1chat.core.events import Done
from r1chat.history.store import History
from r1chat.host.outcomes import ContextUsed, Failed, Item, LeftOut, Loaded, LoadFailed
from r1chat.session.chat import ChatSession, ReplyEnded
from r1chat.session.runner import in_thread
from tests.fixtures.engines import Reply, Script

Shown = Item | ReplyEnded


class Chat:
    """A session, its inbox, and what it returned to show, in order."""

    def __init__(self, tmp_path: Path, script: Script, settings: Settings) -> None:
        self.script = script
        self.history = History(tmp_path / "history.sqlite3")
        self.inbox: queue.SimpleQueue[tuple[int, Item]] = queue.SimpleQueue()
        self.started = 0
        runner = in_thread(script.open_engine)(self.inbox, self.history, lambda: None)
        clock = itertools.count(100.0)
        self.session = ChatSession(
            runner, self.history, settings, clock=lambda: next(clock), job_started=self._started
        )
        self.shown: list[tuple[int, Shown]] = []

    def _started(self) -> None:
        self.started += 1

    def pump(self, until: Callable[[], bool], timeout: float = 10) -> list[Shown]:
        """Hand the session what the runner reports until `until()` holds; what it showed."""
        start = len(self.shown)
        deadline = time.monotonic() + timeout
        while not until():
            try:
                job_id, item = self.inbox.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"timed out; showed {self.shown[start:]}") from None
            if (shown := self.session.accept(job_id, item)) is not None:
                self.shown.append((job_id, shown))
        return [item for _, item in self.shown[start:]]

    def ended(self) -> bool:
        return any(isinstance(item, ReplyEnded) for _, item in self.shown)

    def loaded(self) -> list[Shown]:
        self.session.load()
        return self.pump(lambda: self.session.loading_since is None)

    def send(self, text: str) -> list[Shown]:
        """Send `text` and take everything until its reply ended."""
        self.shown.clear()
        self.session.start_reply(self.session.add_prompt(text))
        return self.pump(self.ended)

    def close(self) -> None:
        self.session.runner.stop()
        self.history.close()


@pytest.fixture
def chat(tmp_path: Path) -> Iterator[Chat]:
    chat = Chat(tmp_path, Script(), Settings(model="r1:7b"))
    yield chat
    chat.close()


def test_loading_sets_the_model_and_only_the_last_load_counts(chat: Chat) -> None:
    session = chat.session
    assert [type(item) for item in chat.loaded()] == [Loaded]
    assert session.info is not None and session.info.model == "r1:7b"
    assert session.load_error is None and session.refusal() is None
    session.load()  # loads asked one after the other: the first one's report is stale
    session.use_model("r1:8b")
    shown = chat.pump(lambda: session.loading_since is None)
    assert [item.info.model for item in shown if isinstance(item, Loaded)] == ["r1:8b"]
    assert session.info is not None and session.info.model == "r1:8b"
    assert not session.use_model("r1:8b")  # loaded already: nothing to do


def test_a_model_that_cannot_load_is_why_nothing_can_be_sent(tmp_path: Path) -> None:
    chat = Chat(
        tmp_path, Script(broken={"r1:70b": "r1:70b is not installed"}), Settings(model="r1:70b")
    )
    try:
        assert [type(item) for item in chat.loaded()] == [LoadFailed]
        assert chat.session.load_error == "r1:70b is not installed"
        assert chat.session.refusal() == "No model to answer: r1:70b is not installed"
        chat.session.use(replace(chat.session.settings, model="r1:7b"))  # the settings' model
        chat.pump(lambda: chat.session.loading_since is None)
        assert chat.session.load_error is None and chat.session.refusal() is None
    finally:
        chat.close()


def test_a_reply_fills_its_exchange_and_history(chat: Chat) -> None:
    chat.loaded()
    shown = chat.send("What is 2 + 2?")
    [done] = [item for item in shown if isinstance(item, Done)]
    assert (done.reasoning, done.content) == ("A thought.", "Four.")
    [ex] = chat.session.dialogue.exchanges
    assert (ex.answer, ex.reasoning, ex.finish_reason) == ("Four.", "A thought.", "stop")
    assert chat.session.last_stats is done.stats and chat.session.current is None
    assert chat.session.live == {}
    stored = chat.history.messages(chat.session.dialogue.id or 0)
    assert [(m.role, m.content) for m in stored] == [
        ("user", "What is 2 + 2?"),
        ("assistant", "Four."),
    ]
    # the next prompt sends the answer, never the reasoning
    chat.send("And 3 + 3?")
    [engine] = chat.script.opened
    assert [m.content for m in engine.requests[-1].messages] == [
        "What is 2 + 2?",
        "Four.",
        "And 3 + 3?",
    ]


def test_one_reply_at_a_time_and_stop_keeps_what_came(chat: Chat) -> None:
    chat.script.replies = [Reply("Let me think about this for a while.</think>Done.")]
    chat.loaded()
    chat.script.hold()
    job, unsaved = chat.session.start_reply(chat.session.add_prompt("Think."))
    assert unsaved is None and chat.session.current is job
    assert chat.session.refusal() == "Still answering: press esc to stop it first."
    chat.session.stop()
    chat.script.release()
    chat.pump(chat.ended)
    assert chat.session.current is None and chat.session.refusal() is None
    [ex] = chat.session.dialogue.exchanges
    assert ex.finish_reason == "cancelled" and "Done." not in ex.answer


def test_a_reply_that_never_started_is_withdrawn(tmp_path: Path) -> None:
    chat = Chat(tmp_path, Script(n_ctx=24), Settings(model="r1:7b"))
    chat.loaded()
    prompt = "word " * 20  # 24 tokens to the scripted engine: no room for a reply
    job, _ = chat.session.start_reply(chat.session.add_prompt(prompt))
    [failed] = chat.pump(lambda: isinstance(chat.shown[-1][1], Failed))
    assert isinstance(failed, Failed)
    assert failed.message.startswith("the newest message alone is 24 tokens")
    # the screen shows no text for it, so the session gives the prompt back
    withdrawn = chat.session.reply_failed(job.id, "", "")
    assert withdrawn is not None and withdrawn.prompt == prompt
    assert chat.session.dialogue.exchanges == [] and chat.session.dialogue.id is None
    assert chat.history.list_conversations() == []
    chat.close()


def test_a_reply_that_broke_off_keeps_what_it_showed(chat: Chat) -> None:
    chat.script.replies = [Reply("Half a thought and more")]
    chat.loaded()
    chat.script.hold_after = 2  # the engine stops there, as a process that died would
    job, _ = chat.session.start_reply(chat.session.add_prompt("Go"))
    chat.pump(lambda: len(chat.shown) > 3)  # some reasoning came
    # what a child process runner reports when the process dies mid-reply
    chat.inbox.put((job.id, Failed("the model process was killed by SIGKILL")))
    chat.pump(lambda: any(isinstance(item, Failed) for _, item in chat.shown))
    assert chat.session.reply_failed(job.id, "", "Half a thought") is None
    [ex] = chat.session.dialogue.exchanges
    assert (ex.reasoning, ex.finish_reason) == ("Half a thought", "error")
    [_, reply] = chat.history.messages(chat.session.dialogue.id or 0)
    assert (reply.reasoning, reply.finish_reason) == ("Half a thought", "error")
    chat.script.release()


def test_what_was_asked_after_the_reply_runs_once_it_ended(chat: Chat) -> None:
    chat.loaded()
    chat.script.hold()
    chat.session.start_reply(chat.session.add_prompt("Go"))
    calls: list[str] = []
    chat.session.after_current(lambda: calls.append("regenerate"))
    chat.script.release()
    [ended] = [item for item in chat.pump(chat.ended) if isinstance(item, ReplyEnded)]
    assert ended.then is not None and calls == []
    ended.then()
    assert calls == ["regenerate"]


def test_a_new_chat_leaves_the_streaming_reply_behind(chat: Chat) -> None:
    chat.loaded()
    chat.script.hold()
    job, _ = chat.session.start_reply(chat.session.add_prompt("Go"))
    old = chat.session.dialogue.id
    chat.session.new_chat()
    assert chat.session.current is None and chat.session.dialogue.id is None
    chat.script.release()
    assert job.ended.wait(10)
    late = chat.pump(chat.inbox.empty)
    assert not [item for item in late if isinstance(item, (Done, ReplyEnded))]
    assert chat.session.dialogue.exchanges == [] and old is not None
    [_, reply] = chat.history.messages(old)
    assert reply.finish_reason == "cancelled"  # History has it, stopped


def test_opening_a_conversation_measures_its_context(chat: Chat) -> None:
    chat.loaded()
    chat.send("What is 2 + 2?")
    first = chat.session.dialogue.id
    assert first is not None
    chat.session.new_chat()
    assert chat.session.context_used is None
    started = chat.started
    chat.session.open(first)
    assert chat.started == started + 1  # a measure job
    chat.pump(lambda: chat.session.context_used is not None)
    prompt_and_answer = (4 + 5) + (4 + 1)  # the scripted engine's count: 4 + words
    assert chat.session.context_used == prompt_and_answer
    assert [ex.answer for ex in chat.session.dialogue.exchanges] == ["Four."]


def test_context_used_and_left_out_follow_the_runner(chat: Chat) -> None:
    chat.loaded()
    assert chat.session.accept(0, ContextUsed(120, 4096)) is None  # state only
    assert chat.session.context_used == 120
    left_out = LeftOut(2, keep_first=True)
    assert chat.session.accept(0, left_out) is left_out and chat.session.left_out == 2
    chat.send("Go")  # a new reply: the engine says again what it leaves out
    assert chat.session.left_out == 0
