"""Text from model files and models never steers the terminal: a GGUF named
`x\\e]0;PWNED\\a\\e[2J` does not set the window title or clear the screen when `history`,
`history show` or `models info` print it, nor does a reasoning or an answer holding such
codes when `ask` draws it; a pipe still gets the answer exactly as written."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from r1chat.cli.ask_output import PlainOutput, TerminalOutput
from r1chat.core.events import AnswerDelta, Done, Notice, ThinkingDelta, ThinkingDone
from r1chat.core.printable import one_line, printable
from r1chat.history.store import History
from r1chat.models.gguf_writer import write_llama
from tests.fixtures.cli import r1chat
from tests.fixtures.terminal import Terminal

HOSTILE = "x\x1b]0;PWNED\x07\x1b[2J\x1b]52;c;Y2xpcGJvYXJk\x07\x9b1m"
"""A window title, a cleared screen, a clipboard write, an 8-bit CSI."""
STEERING = (b"\x1b]0;", b"\x1b[2J", b"\x1b]52;", b"\x9b", "\x9b".encode())


def steers(output: bytes) -> bool:
    return any(code in output for code in STEERING)


def test_printable_keeps_text_and_drops_controls() -> None:
    assert printable(HOSTILE) == "x"
    assert printable("a\tb\nc ✓ 中文\r\n") == "a\tb\nc ✓ 中文\n"
    assert one_line("evil\u202egnp.exe\nname") == "evilgnp.exe name"


@pytest.fixture
def hostile_history() -> int:
    history = History()
    cid = history.new_conversation(f"title {HOSTILE}", model=f"model {HOSTILE}")
    history.add_message(cid, "user", f"question {HOSTILE}")
    history.add_message(
        cid,
        "assistant",
        f"answer {HOSTILE}",
        reasoning=f"thought {HOSTILE}",
        model=f"model {HOSTILE}",
    )
    history.close()
    return cid


def on_a_terminal(*args: str) -> bytes:
    term = Terminal([sys.executable, "-m", "r1chat", *args], cols=120)
    term.proc.wait(60)
    term.close()
    return bytes(term.output)


def test_history_on_a_terminal(hostile_history: int) -> None:
    listed = on_a_terminal("history")
    assert b"title x" in listed and not steers(listed)
    shown = on_a_terminal("history", "show", str(hostile_history))
    assert b"answer x" in shown and b"thought x" in shown and not steers(shown)
    searched = on_a_terminal("history", "search", "answer")
    assert b"answer" in searched and not steers(searched)


def test_models_info_of_a_hostile_gguf(tmp_path: Path) -> None:
    gguf = write_llama(
        tmp_path / "m.gguf",
        layers=(("f32", "f32"),),
        n_embd=64,
        n_ff=128,
        metadata={"general.name": HOSTILE},
    )
    assert r1chat("models", "import", str(gguf), "--name", "hostile").returncode == 0
    info = on_a_terminal("models", "info", "hostile")
    assert b"hostile  x" in info and not steers(info)
    piped = r1chat("models", "info", "hostile")
    assert "hostile  x" in piped.stdout and not steers(piped.stdout.encode())


def events(text: str) -> list[object]:
    return [
        ThinkingDelta(f"thought {text}"),
        ThinkingDone(1.0, 3),
        AnswerDelta(f"answer {text}"),
        Notice(f"notice {text}"),
    ]


def test_ask_on_a_terminal_draws_no_control_codes() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    out = TerminalOutput("auto", stdout, stderr)
    for e in events(HOSTILE):
        out.event(e)  # type: ignore[arg-type]
    out.finish(Done(f"thought {HOSTILE}", f"answer {HOSTILE}", "stop", boxed=f"[{HOSTILE}]"), "m")
    drawn = (stdout.getvalue() + stderr.getvalue()).encode()
    assert b"answer x" in drawn and b"thought x" in drawn and b"notice x" in drawn
    assert b"Final answer:  [x]" in drawn  # a boxed answer is not Rich markup either
    assert not steers(drawn)


def test_a_pipe_gets_the_answer_as_written() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    out = PlainOutput("hide", stdout, stderr)
    for e in events(HOSTILE):
        out.event(e)  # type: ignore[arg-type]
    out.finish(Done("", f"answer {HOSTILE}", "stop"), "m")
    assert stdout.getvalue() == f"answer {HOSTILE}\n"
    assert not steers(stderr.getvalue().encode())  # warnings are for a person
