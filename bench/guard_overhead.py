"""Cost of the loop guard on decode time, long-trace fixture, in one run.

Runs the same 7,500-token reply through `run_turn` with the loop guard on and off,
alternating, and also times the detector alone on the same token texts. Times are CPU
seconds of this process (one llama.cpp thread), so other work on the machine disturbs
them less than wall-clock times.

Usage: python bench/guard_overhead.py [--runs 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import median, table

from r1chat.core.events import AnswerDelta, Done, ThinkingDelta
from r1chat.core.loopguard import ANSWER_RULE, THINKING_RULE, LoopDetector
from r1chat.core.messages import Message
from r1chat.core.request import Control, Request, Sampling
from r1chat.core.turn import Guards, run_turn
from r1chat.engine.local.engine import LocalEngine
from r1chat.launch.local import open_local
from tests.fixtures.scripted import write_long_model


def reply(engine: LocalEngine, guard: bool) -> tuple[float, int, list[str]]:
    request = Request((Message("user", "Explain the plan."),), Sampling(seed=1))
    start = time.process_time()
    texts: list[str] = []
    done = None
    for event in run_turn(engine, request, Control(), Guards(loop_guard=guard)):
        if isinstance(event, ThinkingDelta | AnswerDelta):
            texts.append(event.text)
        elif isinstance(event, Done):
            done = event
    assert done is not None and done.finish_reason == "stop"
    tokens = done.stats.thinking_tokens + done.stats.answer_tokens
    return time.process_time() - start, tokens, texts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = write_long_model(Path(tmp), thinking_tokens=6000, answer_tokens=1500)
        engine = open_local(model.path, n_ctx=8192, threads=1)
        reply(engine, True)  # warm up
        on, off = [], []
        for _ in range(opts.runs):
            secs, tokens, texts = reply(engine, False)
            off.append(secs)
            secs, _, _ = reply(engine, True)
            on.append(secs)
        engine.close()
    alone = []
    for _ in range(opts.runs):
        thinking, answer = LoopDetector(THINKING_RULE), LoopDetector(ANSWER_RULE)
        start = time.process_time()
        for i, text in enumerate(texts):
            (thinking if i < 6000 else answer).push(text)
        alone.append(time.process_time() - start)
    t_off, t_on, t_alone = median(off), median(on), median(alone)
    print(f"## Loop guard overhead, long-trace fixture ({tokens} tokens, median of {opts.runs})\n")
    print(
        table(
            ["run", "CPU seconds", "µs/token", "vs guard off"],
            [
                ["run_turn, guard off", f"{t_off:.3f}", f"{t_off / tokens * 1e6:.1f}", "1.000"],
                [
                    "run_turn, guard on",
                    f"{t_on:.3f}",
                    f"{t_on / tokens * 1e6:.1f}",
                    f"{t_on / t_off:.3f}",
                ],
                [
                    "detector alone",
                    f"{t_alone:.4f}",
                    f"{t_alone / tokens * 1e6:.2f}",
                    f"+{t_alone / t_off:.2%}",
                ],
            ],
        )
    )


if __name__ == "__main__":
    main()
