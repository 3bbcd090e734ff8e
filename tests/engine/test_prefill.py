"""Idle-time prefill in real llama.cpp: after a reply, the conversation as the next prompt
begins is evaluated ahead, so that prompt only reads its new message, and writes what it
would have written without (SmolLM2, whose output depends on the whole prompt)."""

from __future__ import annotations

from pathlib import Path

from r1chat.core.events import Done
from r1chat.core.messages import prepare
from r1chat.core.request import Control, Sampling
from r1chat.core.turn import run_turn
from r1chat.launch.local import open_local
from tests.engine.test_engine import _decoded, request
from tests.fixtures.scripted import ScriptedModel


def last(events: object) -> Done:
    done = list(events)[-1]  # type: ignore[call-overload]
    assert isinstance(done, Done)
    return done


def test_the_next_prompt_reads_only_its_new_message(answer_model: ScriptedModel) -> None:
    engine = open_local(answer_model.path, n_ctx=1024, threads=1)
    try:
        first = last(run_turn(engine, request("What is 2+2?"), Control()))
        conversation = request("What is 2+2?", first.content)
        prefix = engine.builder.build(prepare(conversation.messages), reply=False)
        assert engine.prefill(conversation, Control()) > 0
        assert engine.prefill(conversation, Control()) == 0  # already in the cache
        before = _decoded(engine)
        second_request = request("What is 2+2?", first.content, "Again?")
        second = last(run_turn(engine, second_request, Control()))
        assert second.content == answer_model.answer
        assert second.stats.cached_tokens == len(prefix)  # the whole conversation so far
        prompt = len(engine.prompt_tokens(second_request))
        generated = second.stats.thinking_tokens + second.stats.answer_tokens
        # llama.cpp's own counters: the new message once, then the reply
        assert _decoded(engine) - before <= prompt - len(prefix) + generated + 2
    finally:
        engine.close()


def test_a_cancelled_prefill_reads_nothing(answer_model: ScriptedModel) -> None:
    engine = open_local(answer_model.path, n_ctx=1024, threads=1)
    try:
        first = last(run_turn(engine, request("What is 2+2?"), Control()))
        stop = Control()
        stop.cancel()
        assert engine.prefill(request("What is 2+2?", first.content), stop) == 0
    finally:
        engine.close()


def test_a_prefilled_reply_is_the_reply_without_prefill(smollm2_path: Path) -> None:
    greedy = Sampling(temperature=0.0, max_tokens=24, seed=1)

    def chat(prefill: bool) -> tuple[str, str, int]:
        engine = open_local(smollm2_path, n_ctx=2048, gpu_layers=0, threads=2)
        try:
            first = last(run_turn(engine, request("Name a fruit.", sampling=greedy), Control()))
            if prefill:
                assert engine.prefill(request("Name a fruit.", first.content), Control()) > 0
            turns = ("Name a fruit.", first.content, "What colour is it?")
            second = last(run_turn(engine, request(*turns, sampling=greedy), Control()))
            return first.content, second.content, second.stats.cached_tokens
        finally:
            engine.close()

    with_prefill, without = chat(True), chat(False)
    assert with_prefill[:2] == without[:2] and with_prefill[1]  # token for token
    assert with_prefill[2] > without[2]  # the earlier answer came from the cache
