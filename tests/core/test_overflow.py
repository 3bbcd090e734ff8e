"""The overflow policy on its own: which exchanges a prompt leaves out, and when it stops
(a word counter stands in for the tokenizer; tests/cli/test_ask_overflow.py runs llama.cpp)."""

from __future__ import annotations

import pytest

from r1chat.core.errors import PromptTooLong
from r1chat.core.messages import Message
from r1chat.core.overflow import ContextFull, Overflow, fit


def words(messages: tuple[Message, ...]) -> int:
    return sum(len(m.content.split()) for m in messages)


def chat(*turns: str) -> tuple[Message, ...]:
    """Alternating user / assistant texts, the last a user's."""
    return tuple(Message("user" if i % 2 == 0 else "assistant", t) for i, t in enumerate(turns))


TEN = " ".join(["w"] * 10)
CONVERSATION = chat(TEN, TEN, TEN, TEN, TEN, TEN, "newest question")  # 62 words


def test_a_prompt_that_leaves_room_is_sent_whole() -> None:
    fitted = fit(CONVERSATION, words, 100, Overflow(reserve=30))
    assert fitted.messages == CONVERSATION and fitted.left_out == 0 and fitted.tokens == 62


def test_drop_oldest_leaves_out_whole_exchanges_until_the_reserve_fits() -> None:
    fitted = fit(CONVERSATION, words, 80, Overflow(reserve=30))  # 62 + 30 > 80
    assert fitted.left_out == 1 and fitted.tokens == 42
    assert fitted.messages == CONVERSATION[2:]
    fitted = fit(CONVERSATION, words, 50, Overflow(reserve=30))
    assert fitted.left_out == 3 and fitted.messages == CONVERSATION[6:]  # the newest alone


def test_keep_first_and_system_text_stay() -> None:
    messages = (Message("system", "be brief"), *CONVERSATION)
    fitted = fit(messages, words, 80, Overflow(reserve=30, keep_first=True))
    assert fitted.messages[0] == Message("system", "be brief")
    assert fitted.messages[1:3] == CONVERSATION[:2]  # the first exchange is kept
    assert fitted.messages[3:] == CONVERSATION[4:] and fitted.left_out == 1


def test_stop_refuses_and_says_what_to_do() -> None:
    with pytest.raises(ContextFull) as e:
        fit(CONVERSATION, words, 80, Overflow("stop", reserve=30))
    assert "62 tokens" in str(e.value) and "--overflow drop-oldest" in str(e.value)


def test_the_newest_message_alone_over_the_context_is_an_error() -> None:
    huge = chat(TEN, TEN, " ".join(["w"] * 100))
    with pytest.raises(PromptTooLong) as e:
        fit(huge, words, 80, Overflow(reserve=10))
    assert str(e.value).startswith("the newest message alone is 100 tokens")


def test_the_default_reserve() -> None:
    assert Overflow().room(8192, None) == 2048  # a quarter of the context
    assert Overflow().room(65536, None) == 4096  # at most 4,096
    assert Overflow().room(8192, 500) == 516  # a thinking budget (and the answer room)
    assert Overflow(reserve=0).room(8192, 500) == 0
