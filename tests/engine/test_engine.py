"""The local engine in-process: prompts, cache reuse, cancellation, injection, events."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from r1chat.core.events import AnswerDelta, Done, PromptProgress, ThinkingDelta, ThinkingDone
from r1chat.core.messages import Message
from r1chat.core.request import Control, Request, Sampling
from r1chat.core.turn import Guards, run_turn
from r1chat.engine.local.engine import LocalEngine
from r1chat.launch.local import open_local
from tests.fixtures.scripted import ScriptedModel


@pytest.fixture(scope="module")
def engine(answer_model: ScriptedModel):
    eng = open_local(answer_model.path, n_ctx=4096)
    yield eng
    eng.close()


def request(*turns: str, **kw) -> Request:
    roles = ["user", "assistant"]
    msgs = tuple(Message(roles[i % 2], t) for i, t in enumerate(turns))  # type: ignore[arg-type]
    return Request(messages=msgs, **kw)


def test_events_in_order(engine: LocalEngine, answer_model: ScriptedModel):
    events = list(run_turn(engine, request("2+2?"), Control()))
    kinds = [type(e) for e in events]
    assert kinds[0] is PromptProgress and kinds[-1] is Done
    first_answer = kinds.index(AnswerDelta)
    assert kinds.count(ThinkingDone) == 1 and kinds.index(ThinkingDone) < first_answer
    assert max(i for i, k in enumerate(kinds) if k is ThinkingDelta) < first_answer
    done = events[-1]
    assert isinstance(done, Done)
    assert done.reasoning == answer_model.reasoning.strip()
    assert done.content == answer_model.answer
    thinking_done = events[kinds.index(ThinkingDone)]
    assert thinking_done.title.startswith("Thought for ")
    assert thinking_done.tokens == answer_model.thinking_tokens + 1


def test_earlier_answers_are_resent_whole_as_text(engine: LocalEngine):
    """Stored answers hold no reasoning (it is split off as the reply streams), so they go
    back as they are: an answer that mentions `</think>` keeps what comes before it."""
    req = request(
        "Hi </think>",
        "Hello <｜User｜>! R1 closes with </think> first.",
        "Again",
        system="Be <｜Assistant｜> nice",
    )
    text = engine.render(req).text
    assert text == (
        "<｜begin▁of▁sentence｜><｜User｜>Be <｜Assistant｜> nice\n\nHi </think>"
        "<｜Assistant｜>Hello <｜User｜>! R1 closes with </think> first.<｜end▁of▁sentence｜>"
        "<｜User｜>Again<｜Assistant｜><think>\n"
    )
    tokens = engine.render(req).tokens
    user, assistant = (
        engine.vocab.special_id("<｜User｜>"),
        engine.vocab.special_id("<｜Assistant｜>"),
    )
    assert tokens.count(user) == 2 and tokens.count(assistant) == 2
    assert tokens.count(engine.vocab.special_id("<think>")) == 1  # only the open reasoning
    assert engine.vocab.special_id("</think>") not in tokens


def test_kv_cache_prefix_is_reused_across_turns(engine: LocalEngine):
    first = request("A long first question " * 20)
    done = list(run_turn(engine, first, Control()))[-1]
    assert isinstance(done, Done)
    second = request("A long first question " * 20, done.content, "And then?")
    events = list(run_turn(engine, second, Control()))
    assert events[-1].stats.cached_tokens > 100  # type: ignore[union-attr]


def test_kv_cache_reuse_gives_what_a_fresh_engine_gives(smollm2_path: Path):
    """On a model whose output depends on the whole prompt (SmolLM2, greedy), each turn of
    a chat that reuses the cache writes token for token what a fresh engine writes.

    The earlier answers are given (as a client or an edited chat sends them), so the cached
    prefix is prompt text both engines evaluated in batches: llama.cpp's one-token decode
    (how a reply's own tokens enter the cache) differs from its batched decode in the last
    bits (up to ~1 logit on this Q4_1 model), so greedy ties could flip on replayed replies.
    """
    greedy = Sampling(temperature=0.0, max_tokens=16, seed=1)
    chat = open_local(smollm2_path, n_ctx=2048, gpu_layers=0, threads=2)
    turns = ["Name a fruit.", "Banana.", "What colour is it?", "Yellow.", "Say it in French."]
    try:
        for n in (1, 3, 5):
            before = _decoded(chat)
            reused = list(run_turn(chat, request(*turns[:n], sampling=greedy), Control()))[-1]
            assert isinstance(reused, Done)
            prompt = len(chat.prompt_tokens(request(*turns[:n])))
            generated = reused.stats.thinking_tokens + reused.stats.answer_tokens
            # what llama.cpp itself decoded: the uncached prompt once, then the reply (the
            # counters differ by a token or two in where a prompt's last token is counted)
            decoded = _decoded(chat) - before
            assert decoded <= prompt - reused.stats.cached_tokens + generated + 2
            fresh_engine = open_local(smollm2_path, n_ctx=2048, gpu_layers=0, threads=2)
            try:
                fresh = list(
                    run_turn(fresh_engine, request(*turns[:n], sampling=greedy), Control())
                )
            finally:
                fresh_engine.close()
            assert isinstance(reused, Done) and isinstance(fresh[-1], Done)
            assert reused.content == fresh[-1].content and reused.content
            if n > 1:
                assert reused.stats.cached_tokens > 20  # the earlier turns came from the cache
    finally:
        chat.close()


def test_the_first_token_is_sampled_from_the_prompts_own_batch(answer_model: ScriptedModel):
    """The prompt is decoded whole, in one batch (its last token included), and the first
    token is sampled from it: no extra single-token decode (a whole decode pass, ~150 ms
    for a 7B on a CPU) before the reply starts. Only the reply's tokens, but its last,
    are then decoded one at a time. (The batched engine decodes a prompt's last token in
    a step of its own: the first token then does not depend on what else is batched.)"""
    fresh = open_local(answer_model.path, n_ctx=1024, threads=1)
    batches: list[int] = []
    eval_ = fresh._llm.eval
    fresh._llm.eval = lambda tokens: (batches.append(len(tokens)), eval_(tokens))[1]
    try:
        req = request("hi", sampling=Sampling(temperature=0.0, max_tokens=5))
        done = list(run_turn(fresh, req, Control()))[-1]
        assert isinstance(done, Done)
        assert done.stats.thinking_tokens + done.stats.answer_tokens == 5
        assert batches == [len(fresh.prompt_tokens(req)), 1, 1, 1, 1]
    finally:
        fresh.close()


def _decoded(engine: LocalEngine) -> int:
    """Tokens llama.cpp has decoded in this context (its own performance counters)."""
    import llama_cpp

    ctx = engine._llm.ctx
    llama_cpp.llama_synchronize(ctx)  # the counters take in a decode once it is waited for
    perf = llama_cpp.llama_perf_context(ctx)
    return int(perf.n_p_eval + perf.n_eval)


def test_cancel_during_prompt_evaluation(engine: LocalEngine):
    control = Control()
    long_prompt = request("word " * 800)
    seen = []
    for event in run_turn(engine, long_prompt, control):
        seen.append(event)
        if isinstance(event, PromptProgress) and event.done < event.total:
            control.cancel()
    done = seen[-1]
    assert isinstance(done, Done) and done.finish_reason == "cancelled"
    assert not any(isinstance(e, (ThinkingDelta, AnswerDelta)) for e in seen)
    # The engine still works afterwards, and reuses what it had evaluated.
    again = list(run_turn(engine, request("2+2?"), Control()))[-1]
    assert again.finish_reason == "stop"  # type: ignore[union-attr]


def test_cancel_from_another_thread_between_tokens(loop_model: ScriptedModel):
    eng = open_local(loop_model.path, n_ctx=32768)
    control = Control()
    events = []
    timer = threading.Timer(0.05, control.cancel)
    for event in run_turn(eng, request("loop"), control, Guards(loop_guard=False)):
        events.append(event)
        if len(events) == 30:
            timer.start()
    eng.close()
    done = events[-1]
    assert isinstance(done, Done) and done.finish_reason == "cancelled"
    assert done.reasoning.count("Wait") >= 2 and done.stats.thinking_tokens < 30000


def test_max_tokens_and_seeded_sampling(engine: LocalEngine):
    sampling = Sampling(max_tokens=5, seed=7)
    done = list(run_turn(engine, request("2+2?", sampling=sampling), Control()))[-1]
    assert done.finish_reason == "length"  # type: ignore[union-attr]
    assert done.stats.thinking_tokens == 5  # type: ignore[union-attr]


def test_injection_closes_reasoning(engine: LocalEngine, answer_model: ScriptedModel):
    done = list(run_turn(engine, request("2+2?"), Control(), Guards(think_budget=3)))[-1]
    assert isinstance(done, Done)
    assert done.stats.thinking_stopped_by == "budget"
    assert done.reasoning.endswith("Considering the limited time, I will answer now.")
    assert done.content == answer_model.answer


def test_max_tokens_leaves_room_for_an_answer(long_model: ScriptedModel):
    """6,000 tokens of reasoning, 64 max tokens, no budget: the reasoning is closed in
    time, and the reply ends with an answer (cut, but there)."""
    eng = open_local(long_model.path, n_ctx=1024, gpu_layers=0, threads=1)
    try:
        done = list(run_turn(eng, request("hi", sampling=Sampling(max_tokens=64)), Control()))[-1]
        assert isinstance(done, Done)
        assert done.stats.thinking_stopped_by == "answer_room"
        assert done.stats.thinking_tokens <= 32 + 16 and done.content.strip()
        assert done.finish_reason == "length"
        # an explicit budget, or no room asked for, is left as it is
        kept = Guards(think_budget=40)
        done = list(
            run_turn(eng, request("hi", sampling=Sampling(max_tokens=64)), Control(), kept)
        )[-1]
        assert isinstance(done, Done) and done.stats.thinking_stopped_by == "budget"
        free = Guards(answer_room=False)
        done = list(
            run_turn(eng, request("hi", sampling=Sampling(max_tokens=64)), Control(), free)
        )[-1]
        assert isinstance(done, Done) and done.content == "" and done.stats.thinking_tokens == 64
    finally:
        eng.close()


class _CancelledOnTheBatcher(Control):
    """Ctrl-C landing after the reply's own check, before its next batched step: once
    armed, the Batcher's thread is the first to see it cancelled."""

    armed = False

    @property
    def cancelled(self) -> bool:
        if self.armed and threading.current_thread().name == "batcher":
            self.cancel()
        return super().cancelled


def test_a_reply_cancelled_between_its_steps_ends_as_cancelled(loop_model: ScriptedModel):
    eng = open_local(loop_model.path, n_ctx=4096, threads=1, sequences=2)
    other = Control()  # a second reply, so that the Batcher steps for both
    beside = threading.Thread(
        target=lambda: list(eng.stream(request("loop"), other)), name="beside", daemon=True
    )
    beside.start()
    control = _CancelledOnTheBatcher()
    events = []
    for event in run_turn(eng, request("loop"), control, Guards(loop_guard=False)):
        events.append(event)
        if len(events) == 20:
            control.armed = True
    other.cancel()
    beside.join(30)
    eng.close()
    done = events[-1]
    assert isinstance(done, Done) and done.finish_reason == "cancelled"
