"""GBNF for the numbers a prepared schema allows (`core.schemas.RANGES`), written out digit
by digit in JSON's spelling: whole numbers from lo to hi, and `n.ddd` / `-n.ddd` for the
whole parts n of a range (ddd not all zeros, so that each lies strictly inside its bounds).
"""

from __future__ import annotations

from typing import Any

MOST_DIGITS = 16
"""An unbounded range ends at this many digits (JSON readers lose digits past 2**53)."""
FRACTION = '"." [0-9]? [0-9]? [0-9]? [0-9]? [0-9]? [1-9]'
"""A fraction of up to six digits that is not all zeros."""


def number_rule(ranges: list[Any]) -> str:
    """The alternatives of `RANGES`: whole numbers, positive and negative fractions."""
    whole, positive, negative = ranges
    alternatives = []
    if whole is not None:
        alternatives.append(integers(*whole))
    if positive is not None:
        alternatives.append(f"({naturals(*positive)}) {FRACTION}")
    if negative is not None:
        alternatives.append(f'"-" ({naturals(*negative)}) {FRACTION}')
    return "(" + " | ".join(alternatives) + ")"


def integers(lo: int | None, hi: int | None) -> str:
    """Whole numbers from `lo` to `hi` (None: unbounded), with no leading zeros or `-0`."""
    alternatives = []
    if lo is None or lo < 0:
        nearest = 1 if hi is None or hi >= 0 else -hi
        farthest = None if lo is None else -lo
        alternatives.append(f'"-" ({naturals(nearest, farthest)})')
    if hi is None or hi >= 0:
        alternatives.append(naturals(0 if lo is None else max(0, lo), hi))
    return "(" + " | ".join(alternatives) + ")"


def naturals(lo: int, hi: int | None) -> str:
    """The numbers from `lo` (at least 0) to `hi` (None: unbounded), one alternative per
    number of digits."""
    top = 10**MOST_DIGITS - 1 if hi is None else hi
    alternatives = []
    for digits in range(len(str(lo)), len(str(top)) + 1):
        a = max(lo, 10 ** (digits - 1) if digits > 1 else 0)
        b = min(top, 10**digits - 1)
        if a <= b:
            alternatives.append(_between(str(a), str(b)))
    return " | ".join(alternatives)


def _between(a: str, b: str) -> str:
    """The digit strings from `a` to `b`, both of the same length."""
    if a == b:
        return f'"{a}"'
    same = next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)
    prefix = f'"{a[:same]}" ' if same else ""
    first, last, rest = int(a[same]), int(b[same]), len(a) - same - 1
    if not rest:
        return f"{prefix}[{first}-{last}]"
    low, high = a[same + 1 :], b[same + 1 :]
    alternatives = [
        f'"{first}" ' + (_any(rest) if set(low) == {"0"} else _between(low, "9" * rest))
    ]
    if last - first > 1:
        alternatives.append(f"[{first + 1}-{last - 1}] " + _any(rest))
    alternatives.append(
        f'"{last}" ' + (_any(rest) if set(high) == {"9"} else _between("0" * rest, high))
    )
    return f"{prefix}({' | '.join(alternatives)})"


def _any(digits: int) -> str:
    return " ".join(["[0-9]"] * digits)
