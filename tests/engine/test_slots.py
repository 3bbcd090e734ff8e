"""Which slot a reply takes on a `BatchEngine` (several sequences), through real llama.cpp
on SmolLM2: conversations stay cached where they can."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from r1chat.core.events import PromptProgress
from r1chat.core.messages import Message
from r1chat.core.request import Control, Request, Sampling
from r1chat.engine.local.batch import BatchEngine
from r1chat.engine.local.engine import LocalEngine
from r1chat.launch.local import open_local

AGENT_RULES = (
    "You are a careful coding agent. Read the files before you change them. Keep each "
    "change small and explain it in one sentence. Run the tests after every change, and "
    "when a test fails, read its output before trying again. Never delete a file you did "
    "not create. Ask before running a command that needs the network."
)


@pytest.fixture
def engine(smollm2_path: Path) -> Iterator[LocalEngine]:
    engine = open_local(smollm2_path, n_ctx=1024, threads=1, sequences=4)
    try:
        yield engine
    finally:
        engine.close()


def run(engine: LocalEngine, *messages: Message) -> tuple[str, PromptProgress]:
    """A short greedy reply: its text and its last prompt progress (what was cached)."""
    request = Request(messages, Sampling(temperature=0, max_tokens=6))
    text, progress = [], None
    for event in engine.stream(request, Control()):
        if isinstance(event, PromptProgress):
            progress = event
        else:
            text.append(event.text)
    assert progress is not None
    return "".join(text), progress


def test_a_conversation_with_the_same_system_prompt_leaves_an_idle_one_cached(
    engine: LocalEngine,
) -> None:
    """An agent's conversation, idle between turns (a short reply after a long system
    prompt), then another with the same system prompt: the second takes another slot (and
    copies that prompt), so the first's follow-up finds its whole prompt cached."""
    system = Message("system", AGENT_RULES)
    first = (system, Message("user", "Which file holds the tests?"))
    answer, asked = run(engine, *first)
    run(engine, system, Message("user", "Which command runs the tests?"))
    _, again = run(engine, *first, Message("assistant", answer), Message("user", "And then?"))
    assert again.cached >= asked.total - 1


def test_a_follow_up_takes_the_slot_holding_its_conversation(engine: LocalEngine) -> None:
    first = (Message("user", "Tell me about the sea."),)
    answer, asked = run(engine, *first)
    run(engine, Message("user", "Name a fruit."))
    _, again = run(engine, *first, Message("assistant", answer), Message("user", "More."))
    assert again.cached >= asked.total - 1


def test_an_earlier_turn_asked_again_takes_the_slot_holding_it(engine: LocalEngine) -> None:
    """A conversation's first turn regenerated after its second (its prompt now a prefix
    of what the slot last read) takes that slot, not the least recently used one: the
    conversation there stays cached for its follow-up."""
    other = (Message("user", "Name a fruit."),)
    other_answer, other_asked = run(engine, *other)  # the least recently used slot
    first = (Message("user", "Tell me about the sea."),)
    answer, _ = run(engine, *first)
    run(engine, *first, Message("assistant", answer), Message("user", "More."))
    run(engine, Message("user", "Name a colour."))
    run(engine, Message("user", "Name a tree."))
    run(engine, *first)  # the first turn again
    _, again = run(engine, *other, Message("assistant", other_answer), Message("user", "More."))
    assert again.cached >= other_asked.total - 1


def test_an_r1_follow_up_finds_its_conversation(r1_vocab_path: Path) -> None:
    """R1's prompt ends by opening the reply's thinking (`<think>\\n`), which the
    conversation as history leaves out: its follow-up still goes on from that slot."""
    engine = open_local(r1_vocab_path, n_ctx=1024, threads=1, sequences=4)
    try:
        first = (Message("user", "Tell me about the sea."),)
        answer, asked = run(engine, *first)
        run(engine, Message("user", "Name a fruit."))
        _, again = run(engine, *first, Message("assistant", answer), Message("user", "More."))
        assert asked.total > 6 and again.cached >= asked.total - 2
        assert isinstance(engine, BatchEngine)  # (and in that slot: no third one was used)
        assert sum(1 for slot in engine.batcher.slots if slot.cached) == 2
    finally:
        engine.close()
