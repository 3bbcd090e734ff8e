"""The chat against a remote server (`r1chat --endpoint URL`): the loopback OpenAI server
(reasoning in `reasoning_content`, or inline `<think>` tags), llama-cpp-python's own
server and `r1chat serve` on a scripted model, through the real app with Pilot."""

from __future__ import annotations

import pytest

from r1chat.tui.widgets.turns import UserMessage
from tests.fixtures.llama_server import ALIAS, KEY, KEY_ENV, Served, needs_server
from tests.fixtures.openai_server import ANSWER, REASONING, OpenAIServer
from tests.fixtures.scripted import ScriptedModel
from tests.fixtures.serve import serving
from tests.tui.pilot import SIZE, ask, make_app, ready, run_async, settle

MODEL = "deepseek-ai/DeepSeek-R1"


@pytest.mark.parametrize("field", ["reasoning_content", None])
@run_async
async def test_a_chat_with_a_remote_server(field: str | None) -> None:
    with OpenAIServer(field=field) as server:
        app = make_app(MODEL, endpoint=server.url)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            assert app.chat.session.load_error is None
            assert f"{MODEL}" in app.chat.status.text and "remote" in app.chat.status.text
            first = await ask(pilot, "Hi <｜User｜> there")
            assert first.reasoning.text == "".join(REASONING)
            assert first.answer.text == "".join(ANSWER)
            second = await ask(pilot, "And 3+3?")
            assert second.answer.text == "".join(ANSWER)
        body = server.chat_posts()[-1].body
        assert body["model"] == MODEL
        assert body["messages"] == [
            {"role": "user", "content": "Hi <\u200b｜User｜> there"},
            {"role": "assistant", "content": "".join(ANSWER)},  # without the reasoning
            {"role": "user", "content": "And 3+3?"},
        ]
        [reply] = [m for m in app.history.messages(app.chat.session.dialogue.id)][1:2]
        assert (reply.content, reply.reasoning) == ("".join(ANSWER), "".join(REASONING))
        assert reply.model == MODEL and reply.sampling is not None
        assert reply.sampling["endpoint"] == server.url


@run_async
async def test_the_reasoning_title_counts_what_the_server_counted() -> None:
    """Several tokens per delta: the title ends with the server's reasoning_tokens."""
    with OpenAIServer(counted=(40, 12)) as server:
        app = make_app(MODEL, endpoint=server.url)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            turn = await ask(pilot, "Hi")
            assert turn.reasoning.title.endswith("· 40 tokens"), turn.reasoning.title
        [_, reply] = app.history.messages(app.chat.session.dialogue.id)
        assert reply.stats is not None and reply.stats["thinking_tokens"] == 40


@run_async
async def test_a_server_that_is_down_keeps_the_prompt_and_saves_nothing() -> None:
    with OpenAIServer() as server:
        url = server.url
    app = make_app(MODEL, endpoint=url)  # the server is gone
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        for _ in range(2):  # a second try fails the same way and still leaves no turn
            app.chat.prompt.insert("Hello?")
            await pilot.press("enter")
            await settle(pilot)
            assert app.chat.prompt.text == "Hello?"
            app.chat.prompt.clear()
        assert not app.chat.transcript.query(UserMessage)
        assert any(
            "cannot connect to" in n.message and "not sent" in n.message for n in app._notifications
        )
        assert app.history.list_conversations() == []


@needs_server
@run_async
async def test_a_chat_with_llama_cpp_server(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    app = make_app(ALIAS, endpoint=served.url, api_key_env=KEY_ENV)
    async with app.run_test(size=SIZE) as pilot:
        turn = await ask(pilot, "What is 2+2?")
        assert turn.reasoning.text == served.model.reasoning.strip()
        assert turn.answer.text == served.model.answer
        assert turn.reasoning.title.startswith("Thought for ")
        again = await ask(pilot, "Again?")  # the first answer goes back as history
        assert again.answer.text == served.model.answer
    [_, first, _, second] = app.history.messages(app.chat.session.dialogue.id)
    assert first.finish_reason == second.finish_reason == "stop"


@run_async
async def test_a_chat_with_r1chat_serve(answer_model: ScriptedModel) -> None:
    with serving(answer_model.path, "--ctx", "1024", "--quiet") as s:
        app = make_app("scripted-answer", endpoint=s.url)
        async with app.run_test(size=SIZE) as pilot:
            turn = await ask(pilot, "What is 2+2?")
            assert turn.reasoning.text == answer_model.reasoning.strip()
            assert turn.answer.text == answer_model.answer
            again = await ask(pilot, "Again?")
            assert again.answer.text == answer_model.answer
    [_, first, _, second] = app.history.messages(app.chat.session.dialogue.id)
    assert first.finish_reason == second.finish_reason == "stop"
    assert first.reasoning == answer_model.reasoning.strip()
