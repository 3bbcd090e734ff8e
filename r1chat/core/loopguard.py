"""Detect a reply that repeats the same span of tokens back to back.

Small R1 distills sometimes loop ("Wait, let me check again." forever). The detector
sees one unit per token (its text) and reports a loop when the latest units are at
least `min_repeats` back-to-back copies of one span covering at least `min_span`
units. It checks every `check_every` units over a bounded window, so its cost per token
is small and constant.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LoopRule:
    min_repeats: int
    min_span: int
    max_period: int = 200


# Reasoning loops are cut early; answers (code, tables, lists) need much more evidence.
THINKING_RULE = LoopRule(min_repeats=8, min_span=96)
ANSWER_RULE = LoopRule(min_repeats=12, min_span=300)


class LoopDetector:
    __slots__ = ("_codes", "_count", "_every", "_rule", "_units", "_window")

    def __init__(self, rule: LoopRule, check_every: int = 16) -> None:
        self._rule = rule
        self._every = check_every
        self._window = max(rule.min_span, rule.min_repeats * rule.max_period) + check_every
        self._codes: dict[str, str] = {}
        self._units: list[str] = []
        self._count = 0

    def push(self, unit: str) -> bool:
        """Add one token's text; True when the reply is looping."""
        code = self._codes.get(unit)
        if code is None:
            code = self._codes[unit] = chr(len(self._codes) % 0x10FFFF)
        self._units.append(code)
        self._count += 1
        if self._count % self._every:
            return False
        if len(self._units) > 2 * self._window:
            del self._units[: -self._window]
        return self._looping("".join(self._units[-self._window :]))

    def _looping(self, s: str) -> bool:
        rule, n = self._rule, len(s)
        last = s[-1]
        i = s.rfind(last, 0, n - 1)
        while i != -1 and (period := n - 1 - i) <= rule.max_period:
            reps = max(rule.min_repeats, -(-rule.min_span // period))
            span = s[n - period :]
            if (
                reps * period <= n
                and s[n - 2 * period : n - period] == span
                and s[n - reps * period :] == span * reps
            ):
                return True
            i = s.rfind(last, 0, i)
        return False
