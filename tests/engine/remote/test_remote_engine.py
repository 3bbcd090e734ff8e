"""The remote engine against a loopback server that streams like vLLM and misbehaves."""

from __future__ import annotations

import itertools
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from r1chat.core.errors import R1ChatError
from r1chat.core.events import AnswerDelta, Done, Event, Notice, PromptProgress, ThinkingDelta
from r1chat.core.messages import Message
from r1chat.core.request import Control, Request, Sampling
from r1chat.core.turn import CLOSE_REASONING, WRAP_UP, Guards, run_turn
from r1chat.engine.remote.chunks import GROUP
from r1chat.engine.remote.engine import RemoteEngine
from tests.fixtures.openai_server import (
    ANSWER,
    REASONING,
    Fault,
    OpenAIServer,
    burst_payload,
    burst_word,
)

KEY = "sk-test-0123456789abcdef"
THOUGHT = "".join(REASONING)
REPLY = "".join(ANSWER)
QUESTION = (Message("user", "What is 2+2?"),)


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as s:
        yield s


def engine_for(server: OpenAIServer, **kw) -> RemoteEngine:
    kw.setdefault("backoff", 0.01)
    return RemoteEngine(server.url, **kw)


def turn(
    engine: RemoteEngine,
    *,
    guards: Guards | None = None,
    control: Control | None = None,
    messages: tuple[Message, ...] = QUESTION,
    **req,
) -> list[Event]:
    request = Request(messages=messages, **req)
    return list(run_turn(engine, request, control or Control(), guards or Guards()))


def done(events: list[Event]) -> Done:
    last = events[-1]
    assert isinstance(last, Done)
    return last


def notices(events: list[Event]) -> list[str]:
    return [e.message for e in events if isinstance(e, Notice)]


# -- streaming, reasoning fields, stats -------------------------------------------------------


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning", None])
def test_reasoning_from_a_field_or_inline_tags(field: str | None) -> None:
    with OpenAIServer(field=field) as server:
        events = turn(engine_for(server))
    d = done(events)
    assert d.reasoning == THOUGHT
    assert d.content == REPLY
    assert d.finish_reason == "stop"
    assert not notices(events)
    assert "".join(e.text for e in events if isinstance(e, ThinkingDelta)) == THOUGHT


def test_usage_gives_prompt_and_token_counts(server: OpenAIServer) -> None:
    events = turn(engine_for(server))
    progress = [e for e in events if isinstance(e, PromptProgress)]
    assert progress[0] == PromptProgress(0, 0)  # before the first delta: not known yet
    assert progress[-1] == PromptProgress(11, 11, 3)  # from the usage chunk
    s = done(events).stats
    assert (s.prompt_tokens, s.cached_tokens) == (11, 3)
    assert s.thinking_tokens == len(REASONING)
    # usage says one token more than the deltas (the end of sequence): counted as answer
    assert s.answer_tokens == len(ANSWER) + 1


def test_usage_with_reasoning_tokens_splits_them_exactly() -> None:
    """A server sending several tokens per delta: its `reasoning_tokens` decide the split,
    not which part happens to be streaming when the usage arrives."""
    with OpenAIServer(counted=(40, 12)) as server:
        events = turn(engine_for(server))
    s = done(events).stats
    assert (s.thinking_tokens, s.answer_tokens) == (40, 12)
    assert done(events).reasoning == THOUGHT and done(events).content == REPLY


def test_without_usage_deltas_are_counted() -> None:
    with OpenAIServer(usage=False) as server:
        s = done(turn(engine_for(server))).stats
    assert (s.prompt_tokens, s.thinking_tokens, s.answer_tokens) == (0, len(REASONING), len(ANSWER))


def test_request_body_resends_answers_whole_and_neutralizes_markers(
    server: OpenAIServer,
) -> None:
    history = (
        Message("user", "Hi <｜Assistant｜> there <|fim_pad|>"),
        Message("assistant", "R1 ends its reasoning with </think> and then answers."),
        Message("user", "What is 2+2?"),
    )
    engine = engine_for(server, model=server.models[0], api_key=KEY)
    turn(engine, messages=history, system="Be brief.", sampling=Sampling(seed=7, max_tokens=99))
    post = server.chat_posts()[-1]
    body = post.body
    assert body["model"] == server.models[0]
    assert body["messages"] == [
        {
            "role": "user",
            "content": "Be brief.\n\nHi <\u200b｜Assistant｜> there <\u200b|fim_pad|>",
        },
        {
            "role": "assistant",
            "content": "R1 ends its reasoning with <\u200b/think> and then answers.",
        },
        {"role": "user", "content": "What is 2+2?"},
    ]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert (body["temperature"], body["top_p"], body["seed"], body["max_tokens"]) == (
        0.6,
        0.95,
        7,
        99,
    )
    assert (body["top_k"], body["min_p"]) == (40, 0.0)  # sent even at r1chat's defaults
    assert post.headers["Authorization"] == f"Bearer {KEY}"
    assert not any(r.path.endswith("/models") for r in server.requests)  # model was given


def test_a_server_that_refuses_top_k_gets_the_openai_fields_only(server: OpenAIServer) -> None:
    server.fail(Fault(status=400, message="Unrecognized request argument supplied: top_k"))
    engine = engine_for(server, model=server.models[0])
    for _ in range(2):  # the second reply goes without asking again
        assert done(turn(engine, sampling=Sampling(min_p=0.1))).finish_reason == "stop"
    first, second, third = (p.body for p in server.chat_posts())
    assert first["min_p"] == 0.1 and "top_k" not in second and "min_p" not in third


def test_model_and_context_come_from_the_server(server: OpenAIServer) -> None:
    engine = engine_for(server)
    assert (engine.info.model, engine.info.backend, engine.info.n_ctx) == (
        server.models[0],
        "remote",
        163840,
    )
    assert engine.info.offload == "remote"


def test_several_served_models_need_a_choice() -> None:
    with OpenAIServer(models=("llama-3", "DeepSeek-R1")) as server:
        with pytest.raises(R1ChatError, match=r"several models \(llama-3, DeepSeek-R1\).*-m"):
            engine_for(server)
        assert engine_for(server, prefer=("r1",)).model == "DeepSeek-R1"


def test_render_shows_the_request(server: OpenAIServer) -> None:
    prompt = engine_for(server, api_key=KEY).render(Request(messages=QUESTION))
    body = json.loads(prompt.text)
    assert body["messages"] == [{"role": "user", "content": "What is 2+2?"}]
    assert prompt.tokens == ()
    assert KEY not in prompt.text


def test_a_reply_that_is_not_streamed_is_accepted(server: OpenAIServer) -> None:
    whole = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {
                    "role": "assistant",
                    "reasoning_content": "Thinking.",
                    "content": "Four.",
                },
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3},
    }
    server.fail(Fault(raw=(200, "application/json", json.dumps(whole).encode())))
    d = done(turn(engine_for(server)))
    assert (d.reasoning, d.content, d.finish_reason) == ("Thinking.", "Four.", "stop")


# -- retries --------------------------------------------------------------------------------


def test_429_then_200_is_retried_after_retry_after(server: OpenAIServer) -> None:
    server.fail(Fault(status=429, message="slow down", headers={"Retry-After": "0.3"}))
    d = done(turn(engine_for(server)))
    assert d.content == REPLY
    posts = server.chat_posts()
    assert len(posts) == 2
    assert posts[1].at - posts[0].at >= 0.28


def test_5xx_retries_back_off_then_give_up(server: OpenAIServer) -> None:
    server.fail(*[Fault(status=503, message="Server overloaded")] * 4)
    with pytest.raises(R1ChatError) as e:
        turn(engine_for(server, backoff=0.05, retries=3))
    assert str(e.value) == (
        f"127.0.0.1:{server.port} failed (503 Service Unavailable): Server overloaded (4 tries)"
    )
    at = [p.at for p in server.chat_posts()]
    gaps = [b - a for a, b in itertools.pairwise(at)]
    assert len(at) == 4
    assert gaps[0] >= 0.035 and gaps[1] >= 0.075 and gaps[2] >= 0.15  # 0.05, 0.1, 0.2 ± 20%


def test_a_stream_dropped_before_any_delta_is_retried(server: OpenAIServer) -> None:
    server.fail(Fault(drop_after=0))
    d = done(turn(engine_for(server)))
    assert d.content == REPLY and len(server.chat_posts()) == 2


def test_refused_stream_options_are_dropped(server: OpenAIServer) -> None:
    server.fail(Fault(status=400, message="Unrecognized request argument: stream_options"))
    d = done(turn(engine_for(server)))
    assert d.content == REPLY
    first, second = server.chat_posts()
    assert "stream_options" in first.body and "stream_options" not in second.body


# -- errors ---------------------------------------------------------------------------------


def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    engine = RemoteEngine(f"http://127.0.0.1:{port}", model="m", backoff=0.01)
    with pytest.raises(R1ChatError) as e:
        turn(engine)
    assert str(e.value) == (
        f"cannot connect to http://127.0.0.1:{port}/v1: connection refused (is the server running?)"
    )
    with pytest.raises(R1ChatError, match="connection refused"):
        RemoteEngine(f"127.0.0.1:{port}")  # looking for the model


def test_wrong_key_is_never_repeated() -> None:
    wrong = "sk-wrong-9876543210zyxw"
    with OpenAIServer(api_key=KEY) as server:
        with pytest.raises(R1ChatError) as e:
            turn(
                engine_for(
                    server, model="deepseek-ai/DeepSeek-R1", api_key=wrong, api_key_env="MY_KEY"
                )
            )
        message = str(e.value)
        assert "401 Unauthorized" in message and "check the key in $MY_KEY" in message
        assert wrong not in message and "***" in message
        with pytest.raises(R1ChatError, match=r"no API key was sent.*--api-key-env"):
            turn(engine_for(server, model="deepseek-ai/DeepSeek-R1"))
        with pytest.raises(R1ChatError, match="401") as e:
            engine_for(server, api_key=wrong)  # listing the models
        assert wrong not in str(e.value)
        assert done(turn(engine_for(server, api_key=KEY))).content == REPLY


def test_unknown_model_lists_the_served_ones(server: OpenAIServer) -> None:
    with pytest.raises(R1ChatError) as e:
        turn(engine_for(server, model="r1:7b"))
    assert str(e.value) == (
        f"127.0.0.1:{server.port} does not serve model 'r1:7b': The model `r1:7b` does not "
        "exist. (it serves: deepseek-ai/DeepSeek-R1)"
    )


def test_wrong_api_root(server: OpenAIServer) -> None:
    engine = RemoteEngine(f"http://127.0.0.1:{server.port}/api", model="m")
    with pytest.raises(
        R1ChatError,
        match=r"POST /chat/completions not found \(404\): Not Found; "
        r"is this an OpenAI-compatible API root\? \(it usually ends in /v1\)",
    ):
        turn(engine)


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        (Fault(garbage=b"hello there\n\n"), "it sent 'hello there'"),
        (Fault(garbage=b"data: hello\n\n"), "it streamed 'hello' where JSON was expected"),
        (Fault(garbage=b'data: {"object": "thing"}\n\n'), "a streamed chunk had no choices"),
        (
            Fault(raw=(200, "text/html", b"<html>hi</html>")),
            "POST /chat/completions answered with a web page",
        ),
    ],
)
def test_not_an_openai_server(server: OpenAIServer, fault: Fault, says: str) -> None:
    server.fail(fault)
    with pytest.raises(R1ChatError) as e:
        turn(engine_for(server))
    assert str(e.value) == (
        f"http://127.0.0.1:{server.port}/v1 does not look like an OpenAI-compatible API: {says}"
    )


def test_an_error_event_mid_stream(server: OpenAIServer) -> None:
    server.fail(Fault(garbage=b'data: {"error": {"message": "CUDA out of memory"}}\n\n'))
    with pytest.raises(R1ChatError, match="failed: CUDA out of memory"):
        turn(engine_for(server))


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        (Fault(drop_after=5), "the connection to 127.0.0.1:{port} broke mid-reply"),
        (Fault(eof_after=5), "127.0.0.1:{port} closed the stream mid-reply"),
    ],
)
def test_a_stream_cut_mid_reasoning_keeps_the_part_and_marks_it(
    server: OpenAIServer, fault: Fault, says: str
) -> None:
    server.fail(fault)
    events = turn(engine_for(server))
    d = done(events)
    assert d.finish_reason == "error"
    assert d.reasoning == "".join(REASONING[:5])
    assert notices(events) == [says.format(port=server.port) + "; the answer is incomplete"]
    assert len(server.chat_posts()) == 1  # not retried: part of the reply was shown


def test_a_stream_cut_mid_answer_keeps_the_partial_answer(server: OpenAIServer) -> None:
    server.fail(Fault(drop_after=len(REASONING) + 3))
    d = done(turn(engine_for(server)))
    assert (d.reasoning, d.content, d.finish_reason) == (THOUGHT, "".join(ANSWER[:3]), "error")


def test_timeout_before_the_reply_starts(server: OpenAIServer) -> None:
    server.fail(Fault(delay=5.0))
    with pytest.raises(R1ChatError) as e:
        turn(engine_for(server, model=server.models[0], timeout=0.5))
    assert server.delays_over == 0  # it gave up while the server was still silent
    assert str(e.value).startswith(f"127.0.0.1:{server.port} did not answer within 0.5 s")
    assert len(server.chat_posts()) == 1  # timeouts are not retried


def test_a_server_that_stalls_mid_reply(server: OpenAIServer) -> None:
    server.fail(Fault(stall_after=3))
    events = turn(engine_for(server, timeout=0.5))
    assert done(events).finish_reason == "error"
    assert notices(events) == [
        f"127.0.0.1:{server.port} sent nothing for 0.5 s in the middle of the reply; "
        "the answer is incomplete"
    ]


# -- cancelling -------------------------------------------------------------------------------


def test_cancel_closes_a_silent_stream_promptly(server: OpenAIServer) -> None:
    server.fail(Fault(stall_after=3))
    control = Control()
    engine = engine_for(server)
    seen = 0
    events = []
    for event in run_turn(engine, Request(messages=QUESTION), control):
        if isinstance(event, ThinkingDelta):
            seen += 1
            if seen == 3:
                threading.Timer(0.2, control.cancel).start()
        events.append(event)
    assert done(events).finish_reason == "cancelled"
    assert notices(events) == ["stopped before any answer"]  # and no read timeout
    deadline = time.monotonic() + 5
    while not server.disconnects and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.disconnects  # the server saw the connection go


def test_cancel_while_waiting_for_the_server(server: OpenAIServer) -> None:
    server.fail(Fault(delay=5.0))
    control = Control()
    threading.Timer(0.2, control.cancel).start()
    events = turn(engine_for(server, model=server.models[0]), control=control)
    assert done(events).finish_reason == "cancelled"
    assert server.delays_over == 0  # it ended while the server was still silent


def test_ctrl_c_in_ask_closes_the_stream(server: OpenAIServer) -> None:
    server.fail(Fault(stall_after=3))
    cmd = [
        sys.executable,
        "-m",
        "r1chat",
        "ask",
        "--endpoint",
        server.url,
        "-m",
        server.models[0],
        "--thinking",
        "stderr",
        "What is 2+2?",
    ]
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}  # SIGABRT prints every thread's stack
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    seen = ""
    while "Okay, the" not in seen:  # the first deltas are out; the server is now silent
        seen += proc.stderr.read(1) or pytest.fail(f"ask ended first: {seen!r}")
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=30)  # the server stays silent until the client goes
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        _, err = proc.communicate(timeout=30)
        pytest.fail(f"ask did not stop on Ctrl-C; its threads:\n{err}")
    err = seen + err
    assert proc.returncode == 130
    assert "Okay, the" in err  # the reasoning that came before the stop
    deadline = time.monotonic() + 5
    while not server.disconnects and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.disconnects


def test_works_from_a_worker_thread(server: OpenAIServer) -> None:
    engine = engine_for(server)
    out: queue.SimpleQueue[Event | BaseException] = queue.SimpleQueue()

    def work() -> None:
        try:
            for _ in range(3):
                for event in run_turn(engine, Request(messages=QUESTION), Control()):
                    out.put(event)
        except BaseException as e:  # pragma: no cover - reported below
            out.put(e)

    t = threading.Thread(target=work)
    t.start()
    t.join(10)
    items = []
    while not out.empty():
        items.append(out.get())
    finished = [e for e in items if isinstance(e, Done)]
    assert len(finished) == 3 and all(d.content == REPLY for d in finished)
    engine.close()


# -- budgets and --no-think -----------------------------------------------------------------


@pytest.mark.parametrize("field", ["reasoning_content", None])
def test_budget_continues_from_completions(field: str | None) -> None:
    with OpenAIServer(field=field) as server:
        events = turn(engine_for(server), guards=Guards(think_budget=4))
        completion = [r for r in server.requests if r.path.endswith("/v1/completions")]
    d = done(events)
    assert d.stats.thinking_stopped_by == "budget"
    assert d.content == "Four."
    assert d.finish_reason == "stop"
    assert len(completion) == 1
    # the inline stream opens with its own "<think>\n" delta: the budget counts it
    so_far = "".join(REASONING[:4] if field else REASONING[:3])
    assert d.reasoning == so_far + WRAP_UP.rstrip()
    assert completion[0].body["prompt"] == (
        "<｜User｜>What is 2+2?<｜Assistant｜><think>\n" + so_far + CLOSE_REASONING
    )


@pytest.mark.parametrize("field", ["reasoning_content", None])
def test_budget_without_completions_hides_the_rest_of_the_reasoning(field: str | None) -> None:
    with OpenAIServer(field=field, completions=False) as server:
        events = turn(engine_for(server), guards=Guards(think_budget=4))
    d = done(events)
    assert d.stats.thinking_stopped_by == "budget"
    assert d.content == REPLY  # the server's own answer, after its (unshown) reasoning
    assert WRAP_UP.strip() in d.reasoning and "four" not in d.reasoning


def test_no_think_prefills_an_empty_reasoning(server: OpenAIServer) -> None:
    d = done(turn(engine_for(server), think=False))
    assert (d.reasoning, d.content) == ("", "Four.")
    prompt = server.requests[-1].body["prompt"]
    assert prompt == "<｜User｜>What is 2+2?<｜Assistant｜><think>\n\n</think>\n\n"
    assert not server.chat_posts()


def test_no_think_without_completions_falls_back_to_chat() -> None:
    with OpenAIServer(completions=False) as server:
        d = done(turn(engine_for(server), think=False))
    assert (d.reasoning, d.content) == (THOUGHT, REPLY)


# -- bursts ------------------------------------------------------------------------------------

N = 2000


@pytest.mark.parametrize("inline", [False, True])
def test_a_burst_is_merged_without_losing_anything(inline: bool) -> None:
    with OpenAIServer(field=None if inline else "reasoning_content") as server:
        server.bench_payload = burst_payload(N, inline)
        events = turn(engine_for(server))
    d = done(events)
    assert d.reasoning == "".join(burst_word(i) for i in range(N // 2)).strip()
    assert d.content == "".join(burst_word(i) for i in range(N // 2, N)).strip()
    assert d.stats.thinking_tokens + d.stats.answer_tokens == N
    assert not notices(events)
    deltas = [e for e in events if isinstance(e, ThinkingDelta | AnswerDelta)]
    assert len(deltas) < N / 8  # merged


@pytest.mark.parametrize("inline", [False, True])
@pytest.mark.parametrize("completions", [True, False])
def test_budget_in_a_burst(inline: bool, completions: bool) -> None:
    field = None if inline else "reasoning_content"
    with OpenAIServer(field=field, completions=completions) as server:
        server.bench_payload = burst_payload(N, inline)
        d = done(turn(engine_for(server), guards=Guards(think_budget=100)))
    assert d.stats.thinking_stopped_by == "budget"
    assert 100 <= d.stats.thinking_tokens < 100 + GROUP
    assert d.reasoning.endswith(WRAP_UP.strip())
    shown = d.reasoning.removesuffix(WRAP_UP.strip()).strip()
    assert shown == "".join(burst_word(i) for i in range(len(shown.split()))).strip()
    if completions:
        assert d.content == "Four."
    else:  # the rest of the reasoning is dropped; the answer is the server's own
        assert d.content == "".join(burst_word(i) for i in range(N // 2, N)).strip()


@pytest.mark.parametrize("field", ["reasoning_content", None])
def test_loop_guard_cuts_a_looping_reasoning(field: str | None) -> None:
    looping = (
        "Okay",
        ",",
        " let me",
        " think.",
        *((" Wait", ", let", " me check", " again.") * 60),
    )
    with OpenAIServer(field=field, reasoning=looping) as server:
        events = turn(engine_for(server))
    d = done(events)
    assert d.stats.thinking_stopped_by == "loop"
    assert d.content == "Four."
    assert d.finish_reason == "stop"
    assert any("repeating itself" in n for n in notices(events))
    assert d.stats.thinking_tokens < len(looping)


def test_max_tokens_ends_the_stream_of_a_server_that_ignores_it() -> None:
    reasoning = tuple(f" step{i}" for i in range(400))  # the server streams all of it
    with OpenAIServer(reasoning=reasoning, completions=False, delta_gap=0.005) as server:
        events = turn(engine_for(server), sampling=Sampling(max_tokens=100))
        end = done(events)
        assert end.finish_reason == "length"
        assert end.stats.thinking_tokens + end.stats.answer_tokens <= 100
        deadline = time.monotonic() + 5
        while not server.disconnects and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.disconnects  # closed, not read to its end
