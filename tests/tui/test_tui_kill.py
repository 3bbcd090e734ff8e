"""Kill -9 the chat while the long-trace model streams, then reopen: the partial reply is
there. The chat runs as a real `r1chat chat` process on a pseudo-terminal."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from r1chat.config import paths
from r1chat.config.file import Config
from r1chat.config.settings import Settings
from r1chat.history.store import History
from tests.fixtures.scripted import ScriptedModel, write_long_model
from tests.fixtures.terminal import Terminal

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")


@pytest.fixture(scope="module")
def longer_model(scripted_dir: Path) -> ScriptedModel:
    """The long-trace model with 20,000 reasoning tokens: several seconds of streaming,
    so the kill lands mid-reply on a fast machine too."""
    return write_long_model(scripted_dir, 20000, 300)


def test_kill_9_mid_reply_keeps_the_partial_reply(longer_model: ScriptedModel) -> None:
    long_model = longer_model
    db = paths.history_db()
    term = Terminal(
        [
            sys.executable,
            "-m",
            "r1chat",
            "chat",
            "-m",
            str(long_model.path),
            "--threads",
            "1",
            "--ctx",
            "24000",
        ]
    )
    try:
        term.wait_for_text("Ask anything")
        term.type("Explain the plan.\r")
        deadline = time.monotonic() + 60
        partial = None
        while time.monotonic() < deadline:
            if db.exists():
                with History(db) as history:
                    replies = [
                        m
                        for c in history.list_conversations()
                        for m in history.messages(c.id)
                        if m.role == "assistant"
                    ]
                if replies and replies[0].reasoning and replies[0].finish_reason is None:
                    partial = replies[0]
                    break
                assert not replies or replies[0].finish_reason is None, "finished before the kill"
            time.sleep(0.02)
        assert partial is not None, "no incremental save seen"
        # SIGKILL the chat and its model process at once (its process group): nothing
        # gets to save anything more; only what was saved while streaming is left.
        os.killpg(term.proc.pid, signal.SIGKILL)
        assert term.proc.wait(10) == -signal.SIGKILL
    finally:
        term.close()

    with History(db) as history:
        [conversation] = history.list_conversations()
        [prompt, reply] = history.messages(conversation.id)
    assert prompt.content == "Explain the plan."
    assert reply.finish_reason is None and reply.stats is None  # never finished
    assert len(reply.reasoning) >= len(partial.reasoning) > 0
    assert long_model.reasoning.startswith(reply.reasoning)

    asyncio.run(_reopen(long_model, conversation.id, reply.reasoning))


async def _reopen(model: ScriptedModel, conversation_id: int, reasoning: str) -> None:
    from r1chat.session.runner import in_child_process
    from r1chat.tui.app import ChatApp
    from r1chat.tui.widgets.turns import AssistantTurn

    app = ChatApp(
        Settings(model=str(model.path), threads=1, n_ctx=24000),
        config=Config.load(),
        history=History(),
        runner=in_child_process,
        conversation_id=conversation_id,
    )
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        [turn] = app.query(AssistantTurn)
        assert turn.reasoning.text == reasoning.strip() or turn.reasoning.text == reasoning
        assert turn.reasoning.title == "Reasoning (the reply was interrupted)"
        assert turn.answer.status.startswith("■ Interrupted")


def test_reopening_with_c_loads_the_model_the_conversation_used(
    answer_model: ScriptedModel,
) -> None:
    """`r1chat -c` without -m: the conversation's model, not the default (r1:7b here,
    which is not installed, so loading it would fail)."""
    ask = [sys.executable, "-m", "r1chat", "ask", "-m", str(answer_model.path), "remember"]
    assert subprocess.run(ask, stdin=subprocess.DEVNULL, capture_output=True).returncode == 0
    term = Terminal([sys.executable, "-m", "r1chat", "-c", "--threads", "1"])
    try:
        term.wait_for_text("remember")
        term.wait_for_text("Scripted-Answer")  # the status bar: that model loaded
        assert b"Cannot load the model" not in term.output
    finally:
        term.close()


def test_the_chat_command_line_reaches_the_reply(answer_model: ScriptedModel) -> None:
    """`r1chat chat` flags as a user types them: the reply is made and saved with them,
    and `--conversation N` reopens that chat."""
    flags = [
        "--gpu-layers",
        "0",
        "--threads",
        "1",
        "--preset",
        "precise",
        "--top-k",
        "7",
        "--min-p",
        "0.2",
    ]
    argv = [sys.executable, "-m", "r1chat", "chat", "-m", str(answer_model.path), *flags]
    term = Terminal(argv, cols=160, rows=40)
    try:
        term.wait_for_text("Ask anything")
        term.wait_for_text("CPU 1 thread")  # --gpu-layers 0 --threads 1, in the status bar
        term.type("2+2?\r")
        reply = _wait_for_reply()
        term.type("\x11")  # ctrl+q
        assert term.wait(30) == 0
    finally:
        term.close()
    assert reply.sampling is not None
    assert (reply.sampling["temperature"], reply.sampling["top_p"]) == (0.5, 0.95)  # precise
    assert (reply.sampling["top_k"], reply.sampling["min_p"]) == (7, 0.2)
    term = Terminal(
        [
            sys.executable,
            "-m",
            "r1chat",
            "--conversation",
            str(reply.conversation_id),
            "--threads",
            "1",
        ]
    )
    try:
        term.wait_for_text("checked twice")  # the reopened chat shows the saved answer
        term.wait_for_text("Scripted-Answer")
    finally:
        term.close()


def _wait_for_reply(timeout: float = 60):  # -> StoredMessage
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if paths.history_db().exists():
            with History(paths.history_db()) as history:
                for c in history.list_conversations():
                    for m in history.messages(c.id):
                        if m.role == "assistant" and m.finish_reason == "stop":
                            return m
        time.sleep(0.05)
    raise AssertionError("no finished reply was saved")


@pytest.mark.parametrize("answer", ["y", "n"])
def test_the_chat_offers_to_recover_a_damaged_history(
    answer_model: ScriptedModel, answer: str
) -> None:
    db = paths.history_db()
    db.parent.mkdir(parents=True, exist_ok=True)
    db.write_bytes(b"\x00garbage" * 64)
    argv = [sys.executable, "-m", "r1chat", "-m", str(answer_model.path), "--threads", "1"]
    term = Terminal(argv)
    try:
        term.wait_for_text("[y/N]")
        assert "is damaged (file is not a database)" in term.text
        term.type(f"{answer}\r")
        if answer == "y":
            term.wait_for_text("Ask anything")  # the chat opened on a fresh history
            term.type("\x11")
        assert term.wait(30) == (0 if answer == "y" else 1)
    finally:
        term.close()
    aside = list(db.parent.glob("history.sqlite3.corrupt-*"))
    if answer == "y":
        assert "nothing could be read from the damaged history (kept as" in term.text
        assert [p.read_bytes() for p in aside] == [b"\x00garbage" * 64]
    else:
        assert aside == [] and db.read_bytes() == b"\x00garbage" * 64
        assert "error: the chat needs its history; the damaged file is untouched" in term.text


@pytest.mark.parametrize("how", ["ctrl+q", "SIGHUP", "terminal gone"])
def test_a_draft_typed_just_before_the_end_is_kept_whole(
    answer_model: ScriptedModel, how: str
) -> None:
    """Keys typed, then ctrl+n and ctrl+q in the same instant (a paste, a fast typist):
    every key reaches the input before the chat quits. A SIGHUP keeps the draft too, and
    so does a terminal that is gone (its pty closed: nothing can be drawn or restored,
    the chat must still end). The next chat puts it back."""
    draft = "an unsent draft, typed in one go"
    command = [sys.executable, "-m", "r1chat", "chat", "-m", str(answer_model.path)]
    term = Terminal([*command, "--threads", "1"])
    try:
        term.wait_for_text("Ask anything")
        if how == "ctrl+q":
            term.type(draft + "\x0e\x11")  # the draft, ctrl+n, ctrl+q
        else:
            term.type(draft)
            term.wait_for_text("typed in one go")
            if how == "SIGHUP":
                os.killpg(term.proc.pid, signal.SIGHUP)
            else:
                term.hang_up()
        assert term.wait(30) in (0, -signal.SIGHUP)
    finally:
        term.close()
    saved = paths.data_dir() / "draft.txt"
    assert saved.read_text() == draft
    again = Terminal([*command, "--threads", "1"])
    try:
        again.wait_for_text(draft)  # back in the input
        again.type("\x11")
        assert again.wait(30) == 0
    finally:
        again.close()
    assert saved.read_text() == draft  # (quit with the draft still in the input: still kept)


def test_a_chat_whose_terminal_goes_away_while_it_starts_ends(long_model: ScriptedModel) -> None:
    """A closed window or `tmux kill-server` just after the chat first paints (its model
    still loading): the chat ends on the SIGHUP, not left spinning on a dead terminal."""
    term = Terminal([sys.executable, "-m", "r1chat", "chat", "-m", str(long_model.path)])
    try:
        term.wait_for_text("Ask anything")
        term.hang_up()
        assert term.wait(20) == -signal.SIGHUP
    finally:
        term.close()
