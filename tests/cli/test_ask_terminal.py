"""`r1chat ask` on a terminal (a pseudo-terminal, as a person runs it): dimmed reasoning,
the answer as Markdown, word wrap, NO_COLOR, maths mode's highlight and Ctrl-C."""

from __future__ import annotations

import re
import sys

import pytest

from tests.fixtures.scripted import BOXED, ScriptedModel
from tests.fixtures.terminal import Terminal

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
DIM = "\x1b[2m"
ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def ask_on_terminal(*args: str, cols: int = 100, color: bool = True) -> tuple[int, str]:
    term = Terminal(
        [sys.executable, "-m", "r1chat", "ask", *args],
        cols=cols,
        env={"NO_COLOR": None if color else "1"},
    )
    try:
        return term.wait(), term.text
    finally:
        term.close()


def test_reasoning_is_dimmed_and_the_answer_is_markdown(answer_model: ScriptedModel) -> None:
    code, out = ask_on_terminal("-m", str(answer_model.path), "What is 2+2?")
    assert code == 0, out
    assert out.startswith(f"{DIM}Thinking…")
    assert f"{DIM} simple" in out  # each reasoning piece is dimmed as it streams
    assert re.search(r"── Thought for \d+\.\ds · 18 tokens ──", out)
    assert "\x1b[1m4\x1b[0m" in out and "**4**" not in out  # bold, not asterisks
    assert " • " in ESCAPE.sub("", out) and "- 2 + 2" not in out  # a rendered list


def test_no_color_has_no_dim_or_colour(answer_model: ScriptedModel) -> None:
    code, out = ask_on_terminal("-m", str(answer_model.path), "What is 2+2?", color=False)
    assert code == 0, out
    assert DIM not in out and not re.search(r"\x1b\[3\dm|\x1b\[38;", out)
    assert "Okay, the user asks" in out and "checked twice ✓" in out


def test_reasoning_wraps_between_words(answer_model: ScriptedModel) -> None:
    code, out = ask_on_terminal("-m", str(answer_model.path), "2+2?", cols=30)
    assert code == 0, out
    lines = ESCAPE.sub("", out).split("\r\n")
    thinking = lines[1 : next(i for i, ln in enumerate(lines) if ln.startswith("──"))]
    assert len(thinking) > 2 and all(len(ln) <= 30 for ln in thinking)
    words = " ".join(ln.strip() for ln in thinking).split()
    assert "arithmetic:" in words and "simple" in words  # no word broken across lines


def test_maths_mode_highlights_the_final_answer(boxed_model: ScriptedModel) -> None:
    code, out = ask_on_terminal("--math", "-m", str(boxed_model.path), "Solve it.")
    assert code == 0, out
    assert f"\x1b[1mFinal answer:\x1b[0m \x1b[7m {BOXED} \x1b[0m" in out


def test_ctrl_c_marks_the_reasoning_stopped(loop_model: ScriptedModel) -> None:
    argv = ["-m", str(loop_model.path), "--no-loop-guard", "--ctx", "32768", "Loop"]
    term = Terminal([sys.executable, "-m", "r1chat", "ask", *argv], env={"NO_COLOR": None})
    try:
        term.wait_for_text("Wait")
        term.interrupt()
        assert term.wait() == 130
        out = ESCAPE.sub("", term.text)
    finally:
        term.close()
    assert re.search(r"── Stopped after \d+\.\ds · \d+ tokens ──", out), out[-300:]
    assert out.rstrip().endswith("warning: stopped before any answer")
    assert "Traceback" not in out


def test_a_cut_answer_is_drawn_whole_before_the_warning(answer_model: ScriptedModel) -> None:
    """The cut notice comes after the answer's last Markdown block, not inside it."""
    code, out = ask_on_terminal("-m", str(answer_model.path), "--max-tokens", "30", "2+2?")
    assert code == 0, out
    text = ESCAPE.sub("", out)
    assert text.index("checked twice") < text.index("warning: the answer was cut off")
    assert text.rstrip().endswith("for the whole answer")


def test_a_warning_during_the_reasoning_has_its_own_line(loop_model: ScriptedModel) -> None:
    code, out = ask_on_terminal("-m", str(loop_model.path), "--ctx", "32768", "Loop")
    assert code == 0, out
    [line] = [ln for ln in ESCAPE.sub("", out).split("\r\n") if "warning:" in ln]
    assert line.startswith("warning: the reasoning was repeating itself; cut after ")
