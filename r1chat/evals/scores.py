"""From graded samples to the card's figures: pass@1 (the mean over questions of each
question's share of right samples) with its standard error over questions, and cons@k
(the majority answer of each question's samples, right or not)."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from r1chat.evals.store import Sample


@dataclass(frozen=True, slots=True)
class Score:
    """Percentages; `outcomes` counts samples by how they ended (`check.OUTCOMES`)."""

    questions: int
    samples: int
    pass1: float
    stderr: float
    cons: float
    outcomes: Counter[str] = field(default_factory=Counter)
    reasoning_tokens: float = 0.0  # a sample's mean
    tokens: int = 0  # generated in all


def score(samples: list[Sample]) -> Score:
    by_question: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by_question[s.question].append(s)
    groups = list(by_question.values())
    shares = [sum(s.outcome == "right" for s in group) / len(group) for group in groups]
    n = len(shares)
    mean = sum(shares) / n if n else 0.0
    spread = math.sqrt(sum((x - mean) ** 2 for x in shares) / (n - 1)) if n > 1 else 0.0
    voted = sum(_majority_right(group) for group in groups)
    return Score(
        questions=n,
        samples=len(samples),
        pass1=100 * mean,
        stderr=100 * spread / math.sqrt(n) if n else 0.0,
        cons=100 * voted / n if n else 0.0,
        outcomes=Counter(s.outcome for s in samples),
        reasoning_tokens=sum(s.reasoning_tokens for s in samples) / len(samples) if samples else 0,
        tokens=sum(s.reasoning_tokens + s.answer_tokens for s in samples),
    )


def _majority_right(group: list[Sample]) -> bool:
    """Whether the answer most samples gave (the first given, on a tie) is right."""
    votes = Counter(s.answer for s in group if s.answer)
    if not votes:
        return False
    top = max(votes.values())
    winner = next(s.answer for s in group if s.answer and votes[s.answer] == top)
    return any(s.outcome == "right" for s in group if s.answer == winner)
