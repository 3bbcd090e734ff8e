"""The loop detector: trips on back-to-back repeats, never on ordinary text."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from r1chat.core.loopguard import ANSWER_RULE, THINKING_RULE, LoopDetector, LoopRule


def tokens(text: str) -> list[str]:
    """A rough tokenizer: words with their leading space, punctuation, newlines."""
    return re.findall(r" ?\w+| ?[^\w\s]|\s+", text)


def first_trip(detector: LoopDetector, units: list[str]) -> int | None:
    for i, unit in enumerate(units, 1):
        if detector.push(unit):
            return i
    return None


def test_reasoning_loop_trips_within_a_bound():
    intro = tokens("Okay, so the user wants the sum. Let me add the numbers carefully.")
    cycle = tokens(" Wait, let me check again.")
    units = intro + cycle * 200
    at = first_trip(LoopDetector(THINKING_RULE), units)
    assert at is not None
    # 8 copies, or 96 tokens, of repetition, plus at most one check interval.
    bound = len(intro) + max(8 * len(cycle), 96) + len(cycle) + 16
    assert at <= bound


def test_one_token_repeated_trips():
    assert first_trip(LoopDetector(ANSWER_RULE), ["!"] * 400) is not None


def test_long_period_loop_trips():
    paragraph = [f" w{i}" for i in range(150)]
    assert first_trip(LoopDetector(THINKING_RULE), paragraph * 10) is not None


MARKDOWN_TABLE = "| name | value |\n|---|---|\n" + "".join(
    f"| item {i} | {i * i} |\n" for i in range(60)
)
CODE = (
    "def main():\n"
    + "    print()\n" * 6
    + "    x = 0\n    x = 0\n    x = 0\n"
    + "".join(f"    total += values[{i}]\n" for i in range(40))
)
LIST = "".join(f"- Step {i}: check the value and move on.\n" for i in range(80))
SEPARATORS = ("-" * 40 + "\n") * 3 + "=" * 30


def test_no_false_alarm_on_tables_code_and_lists():
    for text in (MARKDOWN_TABLE, CODE, LIST, SEPARATORS, MARKDOWN_TABLE + CODE + LIST):
        for rule in (THINKING_RULE, ANSWER_RULE):
            assert first_trip(LoopDetector(rule), tokens(text)) is None, text[:40]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=4), unique=True, max_size=3000))
def test_text_without_repeats_never_trips(units: list[str]):
    for rule in (THINKING_RULE, ANSWER_RULE):
        assert first_trip(LoopDetector(rule), units) is None


def periodic_tail(units: list[str], rule: LoopRule) -> bool:
    """Brute force: the last units are min_repeats copies of a span covering min_span."""
    n = len(units)
    for p in range(1, rule.max_period + 1):
        reps = max(rule.min_repeats, -(-rule.min_span // p))
        if reps * p <= n and all(units[-k] == units[-k - p] for k in range(1, (reps - 1) * p + 1)):
            return True
    return False


SMALL = LoopRule(min_repeats=3, min_span=6, max_period=8)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from("abcd"), max_size=120))
def test_matches_brute_force_definition(units: list[str]):
    detector = LoopDetector(SMALL, check_every=1)
    for i, unit in enumerate(units, 1):
        assert detector.push(unit) == periodic_tail(units[:i], SMALL)
