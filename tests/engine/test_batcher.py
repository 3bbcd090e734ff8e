"""The Batcher's hand-offs between replies' threads, through real llama.cpp on SmolLM2
(several sequences): a reply waiting on another's work is woken when it is done, and no
step waits for a wake-up that never comes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from r1chat.core.request import Control
from r1chat.engine.local.batch import BatchEngine, Batcher, Slot
from r1chat.launch.local import open_local

TEXT = (
    "The lighthouse keeper climbed the stairs every evening to light the lamp, and every "
    "morning he wrote in his book what the sea had done in the night. Ships passed far "
    "out, their lights small and slow. In winter the storms came from the west and the "
    "spray reached the windows of the lamp room. He had a cat, a radio and a shelf of "
    "books about birds, and he knew the names of all the rocks along the coast. "
) * 5


def until(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not done():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.0005)


def read(batcher: Batcher, tokens: list[int]) -> Slot:
    """Read `tokens` into a slot (as a reply's prompt) and give the slot back."""
    slot = batcher.take(tokens)
    try:
        start = batcher.keep(slot, tokens, len(tokens))
        batcher.feed(slot, tokens[start:], sample=False, control=Control())
        while slot.results.get() != "read":
            pass
        return slot
    finally:
        batcher.give_back(slot)


def test_a_copy_turned_to_wait_for_a_reading_lets_the_steps_go_on(smollm2_path: Path) -> None:
    """While a step runs, a prompt waits to copy its start from an idle slot (no step
    starts until it has). As the step ends, the slot reading this prompt holds more of it
    (once read): the copy waits for that reading instead, so the steps must go on (a
    lost wake-up here once stalled every reply), and it copies the whole prompt."""
    engine = open_local(smollm2_path, n_ctx=3 * 512, threads=1, sequences=3)
    try:
        assert isinstance(engine, BatchEngine)
        batcher = engine.batcher
        text = engine._llm.tokenize(TEXT.encode(), add_bos=False, special=False)
        chunk = engine._chunk  # (the prompt tokens a step reads)
        assert len(text) > 3 * chunk
        read(
            batcher,
            text[:50] + engine._llm.tokenize(b" Then it ends.", add_bos=False, special=False),
        )
        reading = batcher.take(text)  # (not the idle slot: it goes on from none)
        start = batcher.keep(reading, text, len(text))  # (it copies that start)
        batcher.feed(reading, text[start:], sample=False, control=Control())
        until(lambda: bool(batcher._stepping), "a step")
        # during its first step, the start of the prompt is in the idle slot only
        prompt = text[: 3 * chunk]
        copier = batcher.take(prompt)
        kept: list[int] = []
        waiting = threading.Thread(
            target=lambda: kept.append(batcher.keep(copier, prompt, len(prompt) - 1))
        )
        waiting.start()
        until(lambda: bool(batcher._copying), "a copy waiting for the step")
        waiting.join(60)
        assert kept == [len(prompt) - 1]  # copied from the reading slot once it was read
        assert copier.cached == prompt[:-1]
    finally:
        engine.close()
