"""Reading a prompt under a `Reading`: the same tokens as reading it whole, but it stops a
context's worth in, or at once when its reader is gone (the R1 tokenizer, real llama.cpp)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from r1chat.core.errors import PromptCancelled, PromptTooLong
from r1chat.core.messages import Message
from r1chat.core.request import Control, Reading, Request
from r1chat.engine.local.engine import LocalEngine
from r1chat.engine.local.vocab import PIECE, Known
from r1chat.launch.local import open_local

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def engine(r1_vocab_path: Path) -> LocalEngine:
    return open_local(r1_vocab_path, n_ctx=4096, threads=1)


def text(words: int) -> str:
    rng = random.Random(7)
    vocab = [*README.read_text().split(), "中文", "  ", "\n\n", "</think>", "<｜User｜>", "42"]
    return " ".join(rng.choice(vocab) for _ in range(words))


def test_pieces_read_the_same_tokens(engine: LocalEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine.vocab, "_known", Known(0))  # (each read afresh)
    request = Request((Message("user", text(40_000)),))
    reading = Reading(10**9)
    assert engine.prompt_tokens(request, reading) == engine.prompt_tokens(request)
    assert reading.tokens == len(engine.prompt_tokens(request))


def test_reading_stops_a_context_in(engine: LocalEngine) -> None:
    request = Request((Message("user", text(400_000)),))  # ~2.6 MB, ~700k tokens
    reading = Reading(4096)
    with pytest.raises(PromptTooLong, match=r"^the prompt \(read so far\) is [\d,]+ tokens "):
        engine.prompt_tokens(request, reading)
    assert 4096 - 16 < reading.tokens < 4096 + PIECE  # one piece past the context at most


def test_reading_stops_when_its_reader_is_gone(engine: LocalEngine) -> None:
    control = Control()
    control.cancel()
    reading = Reading(10**9, control)
    with pytest.raises(PromptCancelled):
        engine.prompt_tokens(Request((Message("user", text(400_000)),)), reading)
    assert reading.tokens < PIECE  # the first piece, not the rest
