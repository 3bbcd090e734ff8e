"""Grading a reply as the community grades R1: the last `\\boxed{}` of the answer, compared
by HuggingFace's `math-verify` where it is installed (else by a normalised reading:
fractions, decimals and LaTeX spacing); for multiple choice, the last `Answer: X` letter,
among choices shuffled per sample by a recorded seed. Reasoning that never closes, an
answer cut by max tokens, and an answer with nothing to read are wrong, counted apart."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import Any

from r1chat.core.events import Done
from r1chat.core.turn import extract_boxed
from r1chat.evals.benches import CHOICE_PROMPT, Bench
from r1chat.evals.data import Question

LETTERS = "ABCD"
OUTCOMES = ("right", "wrong", "unclosed", "cut", "unread", "failed")
"""How a sample ends: graded right or wrong; reasoning that never closed; an answer cut by
max tokens; an answer with no `\\boxed{}` (no letter); a reply that failed."""


@dataclass(frozen=True, slots=True)
class Asked:
    """A sample's prompt, and for multiple choice the choices in the order shown."""

    prompt: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Graded:
    """`answer`: what the reply answered (a choice's text, not its letter), the key
    majority voting counts by; "" when nothing could be read."""

    outcome: str
    answer: str = ""

    @property
    def right(self) -> bool:
        return self.outcome == "right"


def ask(bench: Bench, question: Question, seed: int) -> Asked:
    """The prompt of one sample (the maths instruction is the request's `math`)."""
    if bench.kind != "choice":
        return Asked(question.text)
    choices = [question.answer, *question.wrong]
    random.Random(seed).shuffle(choices)
    listed = "\n".join(f"{LETTERS[i]}) {c}" for i, c in enumerate(choices))
    return Asked(CHOICE_PROMPT.format(question=question.text, choices=listed), tuple(choices))


def grade(question: Question, asked: Asked, done: Done) -> Graded:
    if not done.content.strip() and done.finish_reason in ("length", "stop"):
        return Graded("unclosed")
    if done.finish_reason == "length":
        return Graded("cut")
    if done.finish_reason not in ("stop",):
        return Graded("failed")
    if asked.choices:
        letter = chosen_letter(done.content)
        if letter is None:
            return Graded("unread")
        picked = asked.choices[LETTERS.index(letter)]
        return Graded("right" if picked == question.answer else "wrong", picked)
    boxed = done.boxed if done.boxed is not None else extract_boxed(done.content)
    if boxed is None or not boxed.strip():
        return Graded("unread")
    return Graded("right" if same_answer(boxed, question.answer) else "wrong", normal(boxed))


_ANSWER_LINE = re.compile(r"answer\s*:\s*[*$(\\{\s]*(?:\\text\{)?\s*([ABCD])\b", re.IGNORECASE)


def chosen_letter(text: str) -> str | None:
    """The letter of the last `Answer: X` (bold, `$X$`, `(X)` too), else of a `\\boxed{X}`."""
    found = _ANSWER_LINE.findall(text)
    if found:
        return str(found[-1]).upper()
    boxed = (extract_boxed(text) or "").strip().strip("()").upper()
    return boxed if len(boxed) == 1 and boxed in LETTERS else None


def same_answer(got: str, want: str) -> bool:
    """Whether boxed answer `got` is reference `want`."""
    if normal(got) == normal(want) or _same_number(got, want):
        return True
    verify = _math_verify()
    return verify is not None and verify(want, got)


@cache
def _math_verify() -> Any:
    """math-verify's check as `check(reference, got)`, or None where it is not installed."""
    try:
        from math_verify import parse, verify  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None

    def check(want: str, got: str) -> bool:
        try:
            return bool(verify(parse(f"${want}$"), parse(f"\\boxed{{{got}}}")))
        except Exception:  # its parser's failures mean "not shown equal"
            return False

    return check


_DROP = re.compile(r"\\left|\\right|\\!|\\,|\\;|\\:|\\quad|\^\{?\\circ\}?|\\%|%|\\\$|\$|\s")
_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")


def normal(text: str) -> str:
    """An answer in one spelling: no spacing commands, `\\dfrac` as `\\frac`, `\\text{}`
    unwrapped, no `x =` in front, no final full stop."""
    s = _TEXT.sub(r"\1", text)
    s = _DROP.sub("", s).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = re.sub(r"^[a-zA-Z]=(?!=)", "", s)
    s = re.sub(r"(\d),(?=\d{3}\b)", r"\1", s)  # 1,000 -> 1000
    return s.rstrip(".")


_FRAC = re.compile(r"^(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}$")


def _number(text: str) -> Fraction | None:
    s = normal(text)
    if m := _FRAC.match(s):
        return (-1 if m[1] else 1) * Fraction(int(m[2]), int(m[3])) if int(m[3]) else None
    try:
        return Fraction(s)  # 12, -0.5, 3/4
    except (ValueError, ZeroDivisionError):
        return None


def _same_number(got: str, want: str) -> bool:
    a, b = _number(got), _number(want)
    return a is not None and a == b
