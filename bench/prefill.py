"""Idle-time prefill: turn 1 writes a long answer; then turn 2 (a short question) with and
without the prefill, side by side (alternated, fresh engines): prompt tokens turn 2 had to
evaluate, and Enter to its first token.

1. SmolLM2-135M (a real model, up to 1,000 answer tokens; not R1-format: its history
   re-sends the answer as generated, so the cache already holds most of it).
2. The long-trace R1 fixture (6,000 reasoning + 1,500 answer tokens): R1's history drops
   the reasoning, so without the prefill turn 2 reads the whole answer again.

Usage: python bench/prefill.py --smollm2 PATH [--runs 3] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from _common import median, table

from r1chat.core.events import Done
from r1chat.core.messages import Message
from r1chat.core.request import Control, Request, Sampling
from r1chat.core.turn import run_turn
from r1chat.launch.local import open_local

ASK = "Write a long, detailed story about a lighthouse keeper and a storm."


def last(events: object) -> Done:
    done = list(events)[-1]  # type: ignore[call-overload]
    assert isinstance(done, Done)
    return done


def run(
    path: Path, threads: int, prefill: bool, n_ctx: int = 4096
) -> tuple[int, int, float, float]:
    """(turn 1's answer tokens, turn 2's evaluated prompt tokens, its time to first
    token, the prefill's own seconds)."""
    engine = open_local(path, n_ctx=n_ctx, gpu_layers=0, threads=threads)
    try:
        sampling = Sampling(temperature=0.0, max_tokens=1000 if n_ctx == 4096 else None, seed=1)
        first = last(run_turn(engine, Request((Message("user", ASK),), sampling), Control()))
        history = (Message("user", ASK), Message("assistant", first.content))
        spent = 0.0
        if prefill:  # what the chat's model process does while the user types
            start = time.perf_counter()
            engine.prefill(Request(history, sampling), Control())
            spent = time.perf_counter() - start
        second_request = Request(
            (*history, Message("user", "Give it a title.")),
            Sampling(temperature=0.0, max_tokens=8, seed=1),
        )
        second = last(run_turn(engine, second_request, Control()))
        s = second.stats
        return (
            first.stats.answer_tokens,
            s.prompt_tokens - s.cached_tokens,
            s.time_to_first_token_s,
            spent,
        )
    finally:
        engine.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smollm2", type=Path, required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    opts = ap.parse_args()
    import tempfile

    from tests.fixtures.scripted import write_long_model

    long = write_long_model(Path(tempfile.mkdtemp())).path
    for title, path, n_ctx in (
        ("SmolLM2-135M Q4_1", opts.smollm2, 4096),
        ("long-trace R1 fixture", long, 32768),
    ):
        without, with_ = [], []
        for _ in range(opts.runs):
            without.append(run(path, opts.threads, False, n_ctx))
            with_.append(run(path, opts.threads, True, n_ctx))
        print(
            f"## {title}: turn 1 answered in {with_[0][0]:,} tokens; turn 2 asks for a "
            f"title ({opts.threads} threads, median of {opts.runs})\n"
        )
        rows = [_row("without prefill", without, False), _row("with idle prefill", with_, True)]
        print(
            table(
                [
                    "turn 2",
                    "prompt tokens evaluated",
                    "Enter to first token (ms)",
                    "prefill while idle (ms)",
                ],
                rows,
            )
            + "\n"
        )


def _row(name: str, runs: list[tuple[int, int, float, float]], prefilled: bool) -> list[str]:
    idle = f"{median([r[3] for r in runs]) * 1000:,.0f}" if prefilled else "-"
    return [
        name,
        f"{median([r[1] for r in runs]):,.0f}",
        f"{median([r[2] for r in runs]) * 1000:,.0f}",
        idle,
    ]


if __name__ == "__main__":
    main()
