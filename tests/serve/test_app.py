"""The HTTP layer of `r1chat serve` over the model host on threads with the scripted
in-memory engine (`Dispatcher`'s `host` seam): every dialect's replies and errors, the
failures the host reports as HTTP statuses, no llama.cpp and no child process. The
end-to-end tier (real llama.cpp, a real server process) is in the other modules here."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from r1chat.config.settings import Settings
from r1chat.core.request import Request, Sampling
from r1chat.core.tools import Tool, Tools
from r1chat.core.turn import Guards
from r1chat.host.commands import Start
from r1chat.host.model_host import ModelHost, Put
from r1chat.host.outcomes import Failed, Why
from r1chat.serve.app import create_app
from r1chat.serve.call import Call
from r1chat.serve.dispatch import Dispatcher
from r1chat.serve.door import Door
from r1chat.serve.names import Names
from r1chat.serve.responses import api_error
from tests.fixtures.engines import Reply, Script

HI = [{"role": "user", "content": "What is 2 + 2?"}]


class Served:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.lines: list[str] = []

        def host(put: Put) -> ModelHost:
            return ModelHost.in_thread(put, Start(script.open_engine))

        settings = Settings(model="scripted", n_ctx=4096)
        self.dispatcher = Dispatcher(settings, lambda name: name, host=host, log=self.lines.append)
        door = Door("127.0.0.1", allowed_hosts=("testserver",))
        names = Names("scripted", "scripted")
        app = create_app(self.dispatcher, names, settings, api_key=None, door=door, log=print)
        self.client = TestClient(app)


@pytest.fixture
def served() -> Iterator[Served]:
    script = Script(replies=[Reply("Two and two.</think>It is 4.")])
    s = Served(script)
    yield s
    s.dispatcher.stop()


def test_a_chat_completion_whole_and_streamed(served: Served) -> None:
    whole = served.client.post("/v1/chat/completions", json={"messages": HI}).json()
    message = whole["choices"][0]["message"]
    assert (message["reasoning_content"], message["content"]) == ("Two and two.", "It is 4.")
    assert whole["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0
    body = {"messages": HI, "stream": True, "stream_options": {"include_usage": True}}
    with served.client.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert "".join(d.get("content", "") for d in deltas) == "It is 4."
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "Two and two."
    assert chunks[-1]["usage"]["prompt_tokens"] > 0


def test_ollama_chat_and_generate_on_the_same_host(served: Served) -> None:
    chat = served.client.post("/api/chat", json={"messages": HI, "stream": False}).json()
    assert chat["message"] == {
        "role": "assistant",
        "content": "It is 4.",
        "thinking": "Two and two.",
    }
    assert chat["done"] and chat["done_reason"] == "stop"
    with served.client.stream("POST", "/api/generate", json={"prompt": "2 + 2?"}) as r:
        objs = [json.loads(line) for line in r.iter_lines() if line]
    assert "".join(o["response"] for o in objs) == "It is 4."
    assert objs[-1]["done"] and objs[-1]["eval_count"] > 0


def test_an_engine_error_is_a_500_in_each_dialects_shape(served: Served) -> None:
    served.script.replies = [Reply("never", error="the server fell over", error_after=0)]
    r = served.client.post("/v1/chat/completions", json={"messages": HI})
    assert r.status_code == 500
    assert r.json()["error"] == {
        "message": "the server fell over",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    r = served.client.post("/api/chat", json={"messages": HI, "stream": False})
    assert (r.status_code, r.json()) == (500, {"error": "the server fell over"})


def test_an_error_mid_reply_ends_the_stream_with_an_error_event(served: Served) -> None:
    served.script.replies = [Reply("Two and two.</think>It is", error="gone", error_after=4)]
    body = {"messages": HI, "stream": True}
    with served.client.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        lines = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    assert json.loads(lines[-2])["error"]["message"] == "gone"


def test_a_model_that_cannot_load_fails_its_request_and_says_why(served: Served) -> None:
    served.script.broken["scripted"] = "no such file: scripted.gguf"
    r = served.client.post("/v1/chat/completions", json={"messages": HI})
    assert r.status_code == 500
    assert r.json()["error"]["message"] == "no such file: scripted.gguf"
    assert r.json()["error"]["param"] == "model"


def _call(tools: Tools | None = None) -> Call:
    request = Request((), Sampling(), tools=tools)
    return Call(None, request, Guards(), stream=False)


@pytest.mark.parametrize(
    ("failed", "status", "param", "code"),
    [
        (Failed("the prompt is 9,000 tokens; raise --ctx", Why.TOO_LONG), 400, "messages", None),
        (Failed("no grammar", Why.BAD_SCHEMA), 400, "response_format", None),
        (Failed("cancelled", Why.CANCELLED), 499, None, None),
        (Failed("gone", Why.CRASHED, "was killed by SIGKILL"), 500, None, None),
        (Failed("cannot load x", Why.LOAD), 500, "model", None),
        (Failed("bad", Why.ERROR), 500, None, None),
        (Failed("internal error: KeyError: 'x'", Why.BUG), 500, None, None),
    ],
)
def test_each_failure_the_host_reports_is_one_http_status(
    failed: Failed, status: int, param: str | None, code: str | None
) -> None:
    error = api_error(failed, _call())
    assert (error.status, error.param) == (status, param)
    if failed.why is Why.TOO_LONG:
        assert error.code == "context_length_exceeded"
        assert error.message.startswith("the prompt is 9,000 tokens (start the server")
    if failed.why is Why.CRASHED:
        assert error.message.startswith("the model process was killed by SIGKILL during")


def test_a_tool_schema_that_cannot_be_a_grammar_names_tools() -> None:
    tools = Tools((Tool("f", "", "{}"),), "auto", True)
    assert api_error(Failed("no grammar", Why.BAD_SCHEMA), _call(tools)).param == "tools"
