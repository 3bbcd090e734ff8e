"""The benchmark sets `r1chat eval` runs, and the R1 model card's figures for them."""

from __future__ import annotations

from dataclasses import dataclass

from r1chat.core.errors import UsageError


@dataclass(frozen=True, slots=True)
class Bench:
    """One set: where it lives on the Hub (a dataset repo, its files at `revision`), how
    its rows read (`fields`: our name -> its column), and how a reply is graded (`kind`:
    `math`, a `\\boxed{}` answer; `choice`, a letter among shuffled choices)."""

    name: str
    title: str
    repo: str
    files: tuple[str, ...]
    kind: str
    fields: dict[str, str]
    gated: bool = False
    revision: str = "main"


BENCHES: dict[str, Bench] = {
    b.name: b
    for b in (
        Bench(
            "math500",
            "MATH-500",
            "HuggingFaceH4/MATH-500",
            ("test.jsonl",),
            "math",
            {"id": "unique_id", "question": "problem", "answer": "answer"},
        ),
        Bench(
            "aime24",
            "AIME 2024",
            "HuggingFaceH4/aime_2024",
            ("data/train-00000-of-00001.parquet",),
            "math",
            {"id": "id", "question": "problem", "answer": "answer"},
        ),
        Bench(
            "aime25",
            "AIME 2025",
            "opencompass/AIME2025",
            ("aime2025-I.jsonl", "aime2025-II.jsonl"),
            "math",
            {"question": "question", "answer": "answer"},
        ),
        Bench(
            "gpqa",
            "GPQA Diamond",
            "Idavidrein/gpqa",
            ("gpqa_diamond.csv",),
            "choice",
            {
                "id": "Record ID",
                "question": "Question",
                "answer": "Correct Answer",
                "wrong1": "Incorrect Answer 1",
                "wrong2": "Incorrect Answer 2",
                "wrong3": "Incorrect Answer 3",
            },
            gated=True,
        ),
    )
}

CHOICE_PROMPT = (
    "Answer the following multiple choice question. The last line of your response should "
    "be of the following format: 'Answer: $LETTER' (without quotes) where LETTER is one of "
    "ABCD. Think step by step before answering.\n\n{question}\n\n{choices}"
)
"""GPQA's prompt as simple-evals (which the R1 card's GPQA figures follow) writes it."""

CARD: dict[str, tuple[str, dict[str, float]]] = {
    "qwen-1.5b": ("R1-Distill-Qwen-1.5B", {"aime24": 28.9, "math500": 83.9, "gpqa": 33.8}),
    "qwen-7b": ("R1-Distill-Qwen-7B", {"aime24": 55.5, "math500": 92.8, "gpqa": 49.1}),
    "llama-8b": ("R1-Distill-Llama-8B", {"aime24": 50.4, "math500": 89.1, "gpqa": 49.0}),
    "qwen-14b": ("R1-Distill-Qwen-14B", {"aime24": 69.7, "math500": 93.9, "gpqa": 59.1}),
    "qwen-32b": ("R1-Distill-Qwen-32B", {"aime24": 72.6, "math500": 94.3, "gpqa": 62.1}),
    "llama-70b": ("R1-Distill-Llama-70B", {"aime24": 70.0, "math500": 94.5, "gpqa": 65.2}),
    "0528-qwen3-8b": ("R1-0528-Qwen3-8B", {"aime24": 86.0, "aime25": 76.3, "gpqa": 61.1}),
}
"""The model cards' pass@1 (%) for each distill (DeepSeek-R1's and R1-0528-Qwen3-8B's),
by what its names contain."""


def bench(name: str) -> Bench:
    if (found := BENCHES.get(name.lower())) is None:
        raise UsageError(f"no benchmark {name!r}: choose from {', '.join(BENCHES)}")
    return found


def card_figure(names: list[str], bench_name: str) -> tuple[str, float] | None:
    """The card's figure for the distill any of `names` (a catalog title, the GGUF's own
    name, a file name) is, as (the distill, pass@1 %); None when none is one of them."""
    for name in names:
        flat = name.lower().replace("_", "-").replace(" ", "-")
        if "r1" not in flat:
            continue
        for key in sorted(CARD, key=len, reverse=True):  # 0528-qwen3-8b before qwen-8b…
            title, figures = CARD[key]
            if f"-{key}-" in f"-{flat}-" and bench_name in figures:
                return title, figures[bench_name]
    return None
