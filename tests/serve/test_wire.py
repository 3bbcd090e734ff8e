"""Unit tier: request bodies to `Call`s, stop strings, and events to OpenAI objects."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from r1chat.config.settings import Settings
from r1chat.core.events import AnswerDelta, Done, Notice, Stats, ThinkingDelta
from r1chat.core.request import Sampling
from r1chat.core.turn import Guards
from r1chat.serve.dialects.base import sse
from r1chat.serve.dialects.openai import ChatWriter, parse_chat, parse_completion
from r1chat.serve.errors import ApiError as BadRequest
from r1chat.serve.reply import ReplyState, Stops

HI = [{"role": "user", "content": "hi"}]
SETTINGS = Settings(sampling=Sampling(temperature=0.6, top_k=40), guards=Guards(think_budget=99))


def test_request_fields_override_the_servers_settings() -> None:
    call = parse_chat(
        {
            "messages": HI,
            "temperature": 0,
            "top_k": 5,
            "min_p": 0.1,
            "seed": 7,
            "max_completion_tokens": 30,
            "max_tokens": 99,
            "model": "R1:7B ",
        },
        SETTINGS,
    )
    s = call.request.sampling
    assert (s.temperature, s.top_k, s.min_p, s.seed, s.max_tokens) == (0, 5, 0.1, 7, 30)
    assert s.top_p == SETTINGS.sampling.top_p  # not given: the server's
    assert call.model == "R1:7B" and call.guards.think_budget == 99 and not call.stream


def test_r1_controls_and_reasoning_effort() -> None:
    ext = {"think_budget": 500, "loop_guard": False, "math": True}
    call = parse_chat({"messages": HI, "r1chat": ext}, SETTINGS)
    assert call.guards == Guards(think_budget=500, loop_guard=False) and call.request.math
    assert (
        parse_chat({"messages": HI, "reasoning_effort": "low"}, SETTINGS).guards.think_budget
        == 1024
    )
    assert (
        parse_chat({"messages": HI, "reasoning_effort": "high"}, SETTINGS).guards.think_budget
        is None
    )
    assert not parse_chat({"messages": HI, "reasoning_effort": "none"}, SETTINGS).request.think
    body = {"messages": HI, "reasoning_effort": "low", "r1chat": {"think_budget": 7}}
    assert parse_chat(body, SETTINGS).guards.think_budget == 7  # the extension wins


def test_messages() -> None:
    parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    answer = {
        "role": "assistant",
        "content": "<think>x</think>\n\nIt is 4.",
        "reasoning_content": "y",
    }
    body = {
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": parts},
            answer,
            {"role": "user", "content": "again"},
        ]
    }
    m = parse_chat(body, SETTINGS).request.messages
    assert [(x.role, x.content) for x in m] == [
        ("system", "Be brief."),
        ("user", "a\nb"),
        ("assistant", "It is 4."),
        ("user", "again"),
    ]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([], None),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "assistant", "content": "x"}]}, "messages[0].role"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content",
        ),
        ({"messages": HI, "top_p": 0}, "top_p"),
        ({"messages": HI, "max_completion_tokens": -1}, "max_completion_tokens"),
        ({"messages": HI, "seed": 1.5}, "seed"),
        ({"messages": HI, "stop": ["a", ""]}, "stop"),
        ({"messages": HI, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"messages": HI, "n": 2}, "n"),
        ({"messages": HI, "stream_options": True}, "stream_options"),
        ({"messages": HI, "r1chat": {"loop_guard": "no"}}, "r1chat.loop_guard"),
        ({"messages": HI, "r1chat": {"dry_run": True}, "stream": True}, "r1chat.dry_run"),
        ({"messages": HI, "model": 7}, "model"),
        ({"messages": HI, "tools": {}}, "tools"),
        ({"messages": HI, "stream_options": {"bogus": 1}}, "stream_options.bogus"),
        ({"messages": HI, "r1chat": {"rm_rf": True}}, "r1chat.rm_rf"),
    ],
)
def test_wrong_fields_are_named(body: object, param: str | None) -> None:
    with pytest.raises(BadRequest) as e:
        parse_chat(body, SETTINGS)
    assert e.value.param == param and e.value.status == 400
    assert e.value.body()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        ({"logit_bias": {"42": 100}}, "logit_bias"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"reasoning_format": "none"}, "reasoning_format"),
        ({"mirostat": 2}, "mirostat"),
    ],
)
def test_a_field_that_would_be_ignored_is_refused_by_name(extra: dict[str, Any], param: str):
    with pytest.raises(BadRequest) as e:
        parse_chat({"messages": HI, **extra}, SETTINGS)
    assert e.value.param == param and param in e.value.message
    with pytest.raises(BadRequest) as e:
        parse_completion({"prompt": "go", **extra}, SETTINGS)
    assert e.value.param == param


def test_what_changes_nothing_passes_and_completions_need_a_prompt() -> None:
    inert = {"frequency_penalty": 0, "presence_penalty": 0.0, "logit_bias": {}, "n": 1}
    about = {"user": "me", "metadata": {"a": "b"}, "store": False, "tools": [], "seed": None}
    assert parse_chat({"messages": HI, **inert, **about}, SETTINGS).chat
    assert parse_completion({"prompt": ["go"]}, SETTINGS).prompt == "go"
    with pytest.raises(BadRequest) as e:
        parse_completion({"prompt": ""}, SETTINGS)
    assert e.value.param == "prompt"


def test_stop_strings_across_pieces() -> None:
    stops = Stops(("END", "\n\n"))
    assert stops.feed("abc E") == ("abc ", False)  # "E" may begin END: held
    assert stops.feed("N") == ("", False)
    assert stops.feed("D tail") == ("", True)
    stops = Stops(("END",))
    assert stops.feed("E") == ("", False)
    assert stops.feed("x") == ("Ex", False)  # it was not END after all
    assert stops.feed("E") == ("", False) and stops.flush() == "E"
    assert Stops(()).feed("anything END") == ("anything END", False)


def _done(content: str, finish: str = "stop") -> Done:
    stats = Stats(prompt_tokens=10, cached_tokens=4, thinking_tokens=3, answer_tokens=2)
    return Done("why", content, finish, stats, boxed="4")


def test_chunks_and_the_whole_reply() -> None:
    call = parse_chat(
        {"messages": HI, "stream": True, "stream_options": {"include_usage": True}}, SETTINGS
    )
    state = ReplyState(call, lambda: None)
    reply = ChatWriter(state, "r1:7b")
    out = [json.loads(reply.opening()[6:])]
    for event in (
        ThinkingDelta('why "so" ✓\n'),
        AnswerDelta("It is 4."),
        Notice('the reasoning was "looping" ✓'),
    ):
        pieces = state.feed(event)
        chunks = [reply.chunk(p) for p in pieces]
        assert reply.pieces(pieces) == b"".join(sse(c) for c in chunks)  # the fast path
        out += chunks
    closing = reply.closing(_done("It is 4.", "loop")).split(b"\n\n")
    out += [json.loads(frame[6:]) for frame in closing if frame.startswith(b"data: {")]
    deltas = [o["choices"][0]["delta"] for o in out if o["choices"]]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"reasoning_content": 'why "so" ✓\n'},
        {"content": "It is 4."},
        {},
    ]
    finish = out[-2]
    assert finish["choices"][0]["finish_reason"] == "stop"  # loop, as OpenAI clients know it
    assert finish["r1chat"]["finish"] == "loop" and finish["r1chat"]["boxed"] == "4"
    assert finish["r1chat"]["notices"] == ['the reasoning was "looping" ✓']
    assert out[-1]["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 3},
    }
    assert len({o["id"] for o in out}) == 1 and out[0]["object"] == "chat.completion.chunk"


def test_a_stop_string_ends_the_generation() -> None:
    stopped: list[bool] = []
    call = parse_chat({"messages": HI, "stop": "4"}, SETTINGS)
    state = ReplyState(call, lambda: stopped.append(True))
    reply = ChatWriter(state, "m")
    state.feed(AnswerDelta("It is 4."))
    state.feed(AnswerDelta(" More."))
    whole = reply.whole(_done("It is 4. More.", "cancelled"))
    assert stopped == [True]
    assert whole["choices"][0]["message"]["content"] == "It is "
    assert whole["choices"][0]["finish_reason"] == "stop"
    assert whole["r1chat"]["finish"] == "stop_string"


def test_serve_stays_off_the_other_commands_paths() -> None:
    code = (
        "import sys; from r1chat.__main__ import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('starlette', 'uvicorn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.splitlines()[-1] == "[]"


def test_ollama_options_are_checked_by_name() -> None:
    from r1chat.serve.dialects.ollama import parse_chat_body

    for num_predict in (-1, -2):  # no limit, until the context is full
        body = {"messages": HI, "options": {"num_predict": num_predict}}
        assert parse_chat_body(body, SETTINGS).request.sampling.max_tokens is None
    with pytest.raises(BadRequest) as e:
        parse_chat_body({"messages": HI, "options": {"num_predict": -5}}, SETTINGS)
    assert e.value.param == "options.num_predict"
