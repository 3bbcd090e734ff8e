"""Long text is tokenized once: a follow-up's prompt (an agent's turn) reads only what is
new, with the same tokens, and a remembered text is still bounded by a `Reading` (the R1
tokenizer, real llama.cpp)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from r1chat.core.errors import PromptCancelled, PromptTooLong
from r1chat.core.messages import Message
from r1chat.core.request import Control, Reading, Request
from r1chat.engine.local.engine import LocalEngine
from r1chat.engine.local.native import Model, common_prefix
from r1chat.engine.local.vocab import KNOWN_SHORTEST, Known
from r1chat.launch.local import open_local

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def engine(r1_vocab_path: Path) -> LocalEngine:
    return open_local(r1_vocab_path, n_ctx=32768, threads=1)


@pytest.fixture
def tokenized(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The texts llama.cpp is asked to tokenize from here on."""
    seen: list[bytes] = []
    tokenize = Model.tokenize

    def counting(self: Model, text: bytes, **kwargs: bool) -> list[int]:
        seen.append(text)
        return tokenize(self, text, **kwargs)

    monkeypatch.setattr(Model, "tokenize", counting)
    return seen


def text(words: int, seed: int) -> str:
    rng = random.Random(seed)
    vocab = [*README.read_text().split(), "中文", "\n\n", "</think>", "<｜User｜>", "42"]
    return " ".join(rng.choice(vocab) for _ in range(words))


def conversation(turns: int) -> Request:
    """An agent's conversation: a long first message (its system prompt folded in), then
    turns of a reasoning-free answer and a long tool-like result."""
    messages = [Message("user", text(3000, seed=0))]
    for turn in range(turns):
        messages += [Message("assistant", f"Step {turn}."), Message("user", text(400, turn + 1))]
    return Request(tuple(messages))


def fresh(engine: LocalEngine, request: Request, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """`request`'s prompt tokenized with nothing remembered."""
    with monkeypatch.context() as m:
        m.setattr(engine.vocab, "_known", Known(0))
        return engine.prompt_tokens(request)


def test_a_follow_up_reads_only_its_new_text(
    engine: LocalEngine, tokenized: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, follow_up = conversation(2), conversation(3)
    engine.prompt_tokens(first, Reading(10**9))
    tokenized.clear()
    tokens = engine.prompt_tokens(follow_up, Reading(10**9))
    new = follow_up.messages[-1].content.encode()
    assert sum(len(t) for t in tokenized if len(t) >= KNOWN_SHORTEST) == len(new)
    assert tokens == fresh(engine, follow_up, monkeypatch)


def test_a_remembered_text_is_still_bounded(engine: LocalEngine) -> None:
    request = conversation(0)
    whole = len(engine.prompt_tokens(request))
    reading = Reading(whole // 2)
    with pytest.raises(PromptTooLong):
        engine.prompt_tokens(request, reading)
    control = Control()
    control.cancel()
    with pytest.raises(PromptCancelled):
        engine.prompt_tokens(request, Reading(10**9, control))


def test_text_and_markup_are_remembered_apart(engine: LocalEngine) -> None:
    spelled = text(200, seed=9) + " </think> " + text(200, seed=10)
    think_close = engine.vocab.special_id("</think>")
    assert think_close not in engine.vocab.encode_text(spelled)
    assert think_close in engine.vocab.encode_markup(spelled)
    assert think_close not in engine.vocab.encode_text(spelled)


def test_a_result_is_the_callers_own(engine: LocalEngine) -> None:
    spelled = text(300, seed=11)
    engine.vocab.encode_text(spelled).clear()
    assert engine.vocab.encode_text(spelled)


def test_the_least_recently_used_is_forgotten_first() -> None:
    known = Known(100)
    encoded: list[str] = []

    def get(name: str) -> list[int]:
        def encode() -> list[int]:
            encoded.append(name)
            return [ord(name)] * 40

        return known.get(False, name * KNOWN_SHORTEST, None, encode)

    for name in "abacab":  # c pushes b out (a was used since), then b pushes c out
        get(name)
    assert encoded == list("abcb")
    get("a")
    get("c")  # pushes b out: a was used since
    get("a")
    assert encoded == list("abcbc")
    get("b")
    assert encoded == list("abcbcb")
    assert get("b") == [ord("b")] * 40 and encoded == list("abcbcb")


def test_common_prefix_is_the_shared_prefix_at_any_chunk() -> None:
    rng = random.Random(3)
    for _ in range(3000):
        a = [rng.randrange(3) for _ in range(rng.randrange(0, 60))]
        b = a[: rng.randrange(0, len(a) + 1)] + [rng.randrange(3) for _ in range(rng.randrange(9))]
        expected = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
        expected = min(len(a), len(b)) if expected is None else expected
        for chunk in (1, 2, 5, 256):
            assert common_prefix(a, b, chunk) == common_prefix(b, a, chunk) == expected
