"""The APIs coding agents speak, through a real `r1chat serve` and real llama.cpp, with the
official clients: Anthropic's Messages API (the `anthropic` SDK, as Claude Code) and
OpenAI's Responses API (the `openai` SDK's `responses`, as Codex); tool calls on the
scripted models that call `get_weather` (R1-0528's markers, and the JSON object of the
first distills); a context that grows for a prompt that needs it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from tests.fixtures.scripted import ScriptedModel
from tests.fixtures.scripted_tools import (
    CALL_ARGUMENTS,
    CALL_NAME,
    write_json_call_model,
    write_marked_call_model,
)
from tests.fixtures.serve import Serving, serving

ASK = "What is 2 + 2?"
WEATHER_PARAMS = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


def root(s: Serving) -> str:
    return s.url[: -len("/v1")]


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, answer_model: ScriptedModel
) -> Iterator[Serving]:
    home = tmp_path_factory.mktemp("agents-home")
    with serving(answer_model.path, "--ctx", "4096", env={"R1CHAT_HOME": str(home)}) as s:
        yield s


@pytest.fixture(scope="module", params=["marked", "json"])
def tool_server(
    request: pytest.FixtureRequest, scripted_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Serving]:
    write = write_marked_call_model if request.param == "marked" else write_json_call_model
    model = write(scripted_dir)
    home = tmp_path_factory.mktemp("agent-tools-home")
    with serving(model.path, "--ctx", "4096", env={"R1CHAT_HOME": str(home)}) as s:
        yield s


def claude(s: Serving) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=root(s), api_key="unused")


def codex(s: Serving) -> openai.OpenAI:
    return openai.OpenAI(base_url=s.url, api_key="unused")


# -- Anthropic's Messages API -----------------------------------------------------------


def test_messages_whole_and_streamed_with_the_reasoning_as_thinking(
    server: Serving, answer_model: ScriptedModel
) -> None:
    c = claude(server)
    user = [{"role": "user", "content": ASK}]
    m = c.messages.create(model="scripted-answer", max_tokens=256, messages=user)
    thinking, text = m.content
    assert thinking.type == "thinking" and text.type == "text"
    assert thinking.thinking == answer_model.reasoning.strip()
    assert thinking.signature  # Claude Code sends it back; it must be there
    assert text.text == answer_model.answer and m.stop_reason == "end_turn"
    assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0
    with c.messages.stream(model="scripted-answer", max_tokens=256, messages=user) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[1].text == answer_model.answer  # type: ignore[union-attr]
    assert final.usage.output_tokens == m.usage.output_tokens


def test_thinking_budget_disabled_and_stop_sequences(
    server: Serving, answer_model: ScriptedModel
) -> None:
    c = claude(server)
    user = [{"role": "user", "content": ASK}]
    budget = c.messages.create(
        model="scripted-answer",
        max_tokens=256,
        messages=user,
        thinking={"type": "enabled", "budget_tokens": 4},
    )
    thinking = budget.content[0]
    assert thinking.type == "thinking"
    assert thinking.thinking.endswith("Considering the limited time, I will answer now.")
    off = c.messages.create(
        model="scripted-answer",
        max_tokens=256,
        messages=user,
        thinking={"type": "disabled"},
    )
    assert [b.type for b in off.content] == ["text"]
    word = answer_model.answer.split()[1]
    stopped = c.messages.create(
        model="scripted-answer", max_tokens=256, messages=user, stop_sequences=[word]
    )
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == word
    assert word not in stopped.content[-1].text  # type: ignore[union-attr]


def test_count_tokens_and_claude_codes_billing_line_left_out(server: Serving) -> None:
    c = claude(server)
    user = [{"role": "user", "content": ASK}]
    plain = c.messages.count_tokens(model="scripted-answer", messages=user, system="Be brief.")
    billed = c.messages.count_tokens(
        model="scripted-answer",
        messages=user,
        system=[
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.1; cch=ab12f;"},
            {"type": "text", "text": "Be brief."},
        ],
    )
    assert plain.input_tokens > 0 and billed.input_tokens == plain.input_tokens


def test_what_anthropic_clients_send_that_r1chat_cannot_honour_is_named(server: Serving) -> None:
    c = claude(server)
    user = [{"role": "user", "content": ASK}]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0]"),
        ({"extra_body": {"container": "abc"}}, "container"),
        ({"extra_body": {"thinking": {"type": "enabled"}}}, "thinking.budget_tokens"),
        (
            {"extra_body": {"context_management": {"edits": [{"type": "clear_tool_uses_1"}]}}},
            "edits[0]",
        ),
    ]
    for extra, named in cases:
        with pytest.raises(anthropic.BadRequestError) as e:
            c.messages.create(model="scripted-answer", max_tokens=64, messages=user, **extra)
        assert e.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
        assert named in e.value.body["error"]["message"], e.value.body  # type: ignore[index]
    image = [
        {"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "x"}}]}
    ]
    with pytest.raises(anthropic.BadRequestError):
        c.messages.create(model="scripted-answer", max_tokens=64, messages=image)
    with pytest.raises(anthropic.NotFoundError):
        c.messages.create(model="claude-nope", max_tokens=64, messages=user)


def test_messages_tool_use_and_its_result(tool_server: Serving) -> None:
    c = claude(tool_server)
    tools = [{"name": CALL_NAME, "description": "The weather", "input_schema": WEATHER_PARAMS}]
    user = [{"role": "user", "content": "Weather in Paris?"}]
    m = c.messages.create(model=_model(tool_server), max_tokens=256, messages=user, tools=tools)
    assert m.stop_reason == "tool_use"
    use = next(b for b in m.content if b.type == "tool_use")
    assert (use.name, use.input) == (CALL_NAME, CALL_ARGUMENTS)
    with c.messages.stream(
        model=_model(tool_server), max_tokens=256, messages=user, tools=tools
    ) as stream:
        final = stream.get_final_message()
    streamed = next(b for b in final.content if b.type == "tool_use")
    assert (streamed.name, streamed.input) == (CALL_NAME, CALL_ARGUMENTS)
    # the result goes back; the prompt has the call and its result
    history = [
        *user,
        {"role": "assistant", "content": [b.model_dump() for b in m.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "22 C, sunny"}],
        },
    ]
    again = c.messages.create(
        model=_model(tool_server), max_tokens=256, messages=history, tools=tools
    )
    cached = again.usage.cache_read_input_tokens or 0  # (Anthropic counts cache reads apart)
    assert again.usage.input_tokens + cached > m.usage.input_tokens


# -- OpenAI's Responses API -------------------------------------------------------------


def test_responses_whole_streamed_and_continued(
    server: Serving, answer_model: ScriptedModel
) -> None:
    c = codex(server)
    r = c.responses.create(model="scripted-answer", input=ASK, reasoning={"summary": "auto"})
    assert r.status == "completed" and r.output_text == answer_model.answer
    reasoning = next(o for o in r.output if o.type == "reasoning")
    assert reasoning.summary[0].text == answer_model.reasoning.strip()
    assert r.usage is not None and r.usage.output_tokens_details.reasoning_tokens > 0
    with c.responses.stream(model="scripted-answer", input=ASK) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.reasoning_text.delta" in kinds and "response.output_text.delta" in kinds
    assert final.output_text == answer_model.answer
    follow = c.responses.create(
        model="scripted-answer", input="And 3 + 3?", previous_response_id=r.id
    )
    assert follow.usage is not None and r.usage is not None
    assert follow.usage.input_tokens > r.usage.input_tokens  # the first turn is in its prompt
    assert c.responses.retrieve(r.id).id == r.id
    with pytest.raises(openai.NotFoundError):
        c.responses.create(model="scripted-answer", input="x", previous_response_id="resp_nope")


def test_responses_max_output_tokens_is_incomplete(server: Serving) -> None:
    r = codex(server).responses.create(model="scripted-answer", input=ASK, max_output_tokens=3)
    assert r.status == "incomplete" and r.incomplete_details is not None
    assert r.incomplete_details.reason == "max_output_tokens"


def test_what_codex_may_send_that_r1chat_cannot_honour_is_named(server: Serving) -> None:
    c = codex(server)
    for extra, param in [
        ({"tools": [{"type": "web_search"}]}, "tools[0]"),
        ({"include": ["file_search_call.results"]}, "include[0]"),
        ({"background": True}, "background"),
        ({"text": {"verbosity": "high"}}, "text.verbosity"),
    ]:
        with pytest.raises(openai.BadRequestError) as e:
            c.responses.create(model="scripted-answer", input=ASK, **extra)  # type: ignore[arg-type]
        assert e.value.param == param, e.value


def test_responses_function_call_and_its_output(tool_server: Serving) -> None:
    c = codex(tool_server)
    tools = [{"type": "function", "name": CALL_NAME, "parameters": WEATHER_PARAMS}]
    r = c.responses.create(model=_model(tool_server), input="Weather in Paris?", tools=tools)
    [call] = [o for o in r.output if o.type == "function_call"]
    assert (call.name, json.loads(call.arguments)) == (CALL_NAME, CALL_ARGUMENTS)
    with c.responses.stream(model=_model(tool_server), input="Weather in Paris?", tools=tools) as s:
        kinds = [event.type for event in s]
        final = s.get_final_response()
    assert "response.function_call_arguments.done" in kinds
    assert [o.type for o in final.output if o.type == "function_call"] == ["function_call"]
    items = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "type": "function_call",
            "call_id": call.call_id,
            "name": call.name,
            "arguments": call.arguments,
        },
        {"type": "function_call_output", "call_id": call.call_id, "output": "22 C, sunny"},
    ]
    again = c.responses.create(model=_model(tool_server), input=items, tools=tools)  # type: ignore[arg-type]
    assert again.usage is not None and r.usage is not None
    assert again.usage.input_tokens > r.usage.input_tokens


def _model(s: Serving) -> str:
    return httpx2.get(f"{s.url}/models").json()["data"][0]["id"]


# -- contexts sized for agents ----------------------------------------------------------


def test_a_prompt_over_the_context_grows_it_and_the_model_reloads(
    tmp_path: Path, answer_model: ScriptedModel
) -> None:
    env = {"R1CHAT_HOME": str(tmp_path)}
    with serving(answer_model.path, "--ctx", "1024", env=env) as s:
        long = [{"role": "user", "content": "word " * 2000}]
        r = httpx2.post(f"{s.url}/chat/completions", json={"messages": long}, timeout=120)
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == answer_model.answer
        assert any("loads again with a" in line for line in s.lines(wait_for="loads again"))
        [loaded] = httpx2.get(f"{root(s)}/api/ps").json()["models"]
        assert loaded["context_length"] >= 8192
        # Ollama's num_ctx grows it too; past the trained context, a 400 in each shape
        wide = {"model": "scripted-answer", "messages": long, "stream": False}
        r = httpx2.post(
            f"{root(s)}/api/chat", json={**wide, "options": {"num_ctx": 24_000}}, timeout=120
        )
        assert r.status_code == 200
        [loaded] = httpx2.get(f"{root(s)}/api/ps").json()["models"]
        assert loaded["context_length"] >= 24_000
        r = httpx2.post(
            f"{root(s)}/api/chat", json={**wide, "options": {"num_ctx": 99_000}}, timeout=120
        )
        assert r.status_code == 400 and "options.num_ctx" in r.json()["error"]
        huge = [{"role": "user", "content": "word " * 40_000}]
        with pytest.raises(anthropic.BadRequestError) as e:
            claude(s).messages.create(model="scripted-answer", max_tokens=64, messages=huge)
        assert e.value.body["error"]["message"].startswith("prompt is too long:")  # type: ignore[index]
