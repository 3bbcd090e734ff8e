"""Ollama's API on `r1chat serve`, through the official `ollama` client against the real
server (real llama.cpp on the scripted models, the loopback Hub for pulls), and the ways
clients say "no reasoning" on /v1."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import ollama
import openai
import pytest

from tests.fixtures.hub_server import FakeHub, make_gguf_bytes
from tests.fixtures.scripted import ScriptedModel
from tests.fixtures.serve import Serving, serving

HI = [{"role": "user", "content": "What is 2+2?"}]
MODEL = "scripted-answer"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, answer_model: ScriptedModel
) -> Iterator[Serving]:
    home = tmp_path_factory.mktemp("ollama-home")
    with serving(answer_model.path, "--ctx", "2048", env={"R1CHAT_HOME": str(home)}) as s:
        yield s


def client(s: Serving) -> ollama.Client:
    return ollama.Client(host=s.url.removesuffix("/v1"), timeout=60)


def root(s: Serving) -> str:
    return s.url.removesuffix("/v1")


def test_list_show_ps_version_and_the_probe(server: Serving) -> None:
    c = client(server)
    [model] = c.list().models
    assert model.model == MODEL and model.size and model.details.format == "gguf"
    shown = c.show(MODEL)
    assert set(shown.capabilities or []) == {"completion", "tools", "thinking"}  # oterm's tools
    info = shown.modelinfo or {}
    assert info[f"{info['general.architecture']}.context_length"] == 2048  # the one served
    [loaded] = c.ps().models
    assert loaded.model == MODEL and loaded.context_length == 2048 and loaded.expires_at
    assert httpx2.get(f"{root(server)}/api/version").json()["version"] == "0.13.5"  # /v1/responses
    probe = httpx2.get(f"{root(server)}/")
    assert probe.status_code == 200 and probe.text == "Ollama is running"
    assert httpx2.head(f"{root(server)}/").status_code == 200


def test_chat_keeps_the_reasoning_in_thinking(server: Serving, answer_model: ScriptedModel) -> None:
    c = client(server)
    whole = c.chat(model=MODEL, messages=HI, stream=False)
    assert whole.message.content == answer_model.answer
    assert (whole.message.thinking or "").strip() == answer_model.reasoning.strip()
    assert whole.done and whole.done_reason == "stop" and whole.eval_count
    parts = list(c.chat(model=MODEL, messages=HI, stream=True))
    assert "".join(p.message.content for p in parts) == answer_model.answer
    thinking = "".join(p.message.thinking or "" for p in parts)
    assert thinking.strip() == answer_model.reasoning.strip()
    assert [p.done for p in parts].count(True) == 1 and parts[-1].done
    assert parts[-1].prompt_eval_count and parts[-1].total_duration
    # think: false answers without reasoning; "low" is a thinking budget
    off = c.chat(model=MODEL, messages=HI, think=False, stream=False)
    assert not off.message.thinking and off.message.content
    low = c.chat(model=MODEL, messages=HI, think="low", stream=False)
    assert (low.message.thinking or "").strip() == answer_model.reasoning.strip()
    # an earlier answer's thinking is not sent back; the Ollama name of the same model works
    follow = [*HI, {"role": "assistant", "content": "4", "thinking": "long thoughts"}, *HI]
    assert c.chat(model=f"{MODEL}:latest", messages=follow).message.content


def test_generate_and_raw(server: Serving, answer_model: ScriptedModel) -> None:
    c = client(server)
    out = c.generate(model=MODEL, prompt="What is 2+2?", system="Be brief.")
    assert out.response == answer_model.answer and out.thinking and out.done
    streamed = list(c.generate(model=MODEL, prompt="What is 2+2?", stream=True))
    assert "".join(p.response for p in streamed) == answer_model.answer
    raw = c.generate(model=MODEL, prompt="<｜User｜>hi<｜Assistant｜>", raw=True)
    assert raw.response and raw.done


def test_what_cannot_be_honoured_is_refused_by_name(server: Serving) -> None:
    c = client(server)
    cases = [
        ({"options": {"mirostat": 2}}, 400, "options.mirostat"),
        ({"options": {"temperature": 9}}, 400, "options.temperature"),
        ({"options": {"num_ctx": 100_000}}, 400, "options.num_ctx"),
        ({"think": "extreme"}, 400, "think"),
        ({"keep_alive": "soon"}, 400, "keep_alive"),
    ]
    for extra, status, name in cases:
        with pytest.raises(ollama.ResponseError) as e:
            c.chat(model=MODEL, messages=HI, **extra)  # type: ignore[arg-type]
        assert e.value.status_code == status and name in e.value.error, (extra, e.value.error)
    with pytest.raises(ollama.ResponseError) as e:
        c.chat(model="nope", messages=HI)
    assert e.value.status_code == 404 and "not installed" in e.value.error
    with pytest.raises(ollama.ResponseError) as e:
        c.embed(model=MODEL, input="x")
    assert e.value.status_code == 501 and "not supported" in e.value.error
    images = [{"role": "user", "content": "see", "images": ["aGk="]}]
    r = httpx2.post(f"{root(server)}/api/chat", json={"model": MODEL, "messages": images})
    assert r.status_code == 400 and "images" in r.json()["error"]
    r = httpx2.post(f"{root(server)}/api/chat", json={"model": MODEL, "messages": HI, "format": 5})
    assert r.status_code == 400 and "format" in r.json()["error"]
    r = httpx2.post(f"{root(server)}/api/chat", json={"model": MODEL, "messages": HI, "x": 1})
    assert r.status_code == 400 and r.json() == {"error": "x is not supported by r1chat serve"}
    # num_ctx up to the server's context is honoured (the reply has at least that room)
    assert c.chat(model=MODEL, messages=HI, options={"num_ctx": 2048, "num_predict": -1})


@pytest.mark.parametrize(
    "switch",
    [
        {"chat_template_kwargs": {"enable_thinking": False}},
        {"reasoning": {"effort": "none"}},
        {"reasoning": {"enabled": False}},
        {"thinking": {"type": "disabled"}},
        {"reasoning_effort": "none"},
    ],
)
def test_every_thinking_off_spelling_gives_no_reasoning(
    server: Serving, switch: dict[str, object]
) -> None:
    body = {"messages": HI, **switch}
    r = httpx2.post(f"{server.url}/chat/completions", json=body, timeout=60)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0
    assert data["choices"][0]["message"]["content"]


def test_reasoning_excluded_and_the_highest_efforts(server: Serving) -> None:
    body = {"messages": HI, "reasoning": {"exclude": True}}
    data = httpx2.post(f"{server.url}/chat/completions", json=body, timeout=60).json()
    assert "reasoning_content" not in data["choices"][0]["message"]
    assert data["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0  # it reasoned
    for effort in ("xhigh", "max"):
        body = {"messages": HI, "reasoning_effort": effort}
        data = httpx2.post(f"{server.url}/chat/completions", json=body, timeout=60).json()
        assert data["choices"][0]["message"]["reasoning_content"]
    bad = httpx2.post(
        f"{server.url}/chat/completions", json={"messages": HI, "thinking": {"type": "maybe"}}
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "thinking.type"


def test_models_carry_their_context_length(server: Serving) -> None:
    listed = httpx2.get(f"{server.url}/models").json()["data"]
    assert listed[0]["context_length"] == listed[0]["max_model_len"] == 2048
    one = openai.OpenAI(base_url=server.url, api_key="none").models.retrieve(MODEL)
    assert one.id == MODEL
    assert httpx2.get(f"{server.url}/models/nope").status_code == 404


def test_keep_alive_unloads_and_the_next_request_loads_again(
    tmp_path: Path, answer_model: ScriptedModel
) -> None:
    env = {"R1CHAT_HOME": str(tmp_path)}
    with serving(answer_model.path, "--keep-alive", "1s", env=env) as s:
        c = client(s)
        deadline = time.monotonic() + 20
        while c.ps().models:  # the idle model goes
            assert time.monotonic() < deadline, "the model was never unloaded"
            time.sleep(0.2)
        assert httpx2.get(f"{root(s)}/health").json()["model"] is None
        assert "unloaded scripted-answer (idle)" in "\n".join(s.lines(wait_for="unloaded"))
        reply = c.chat(model=MODEL, messages=HI, keep_alive=-1)  # loads again, and stays
        assert reply.message.content == answer_model.answer
        [loaded] = c.ps().models
        assert loaded.expires_at.year == 9999  # type: ignore[union-attr]
        time.sleep(1.5)
        assert c.ps().models
        # Ollama's way to unload now: an empty generate with keep_alive 0
        c.generate(model=MODEL, keep_alive=0)
        assert c.ps().models == []
        c.generate(model=MODEL)  # an empty prompt loads it
        assert [m.model for m in c.ps().models] == [MODEL]


@pytest.fixture
def hub_env(tmp_path: Path) -> Iterator[tuple[dict[str, str], FakeHub]]:
    with FakeHub() as hub:
        yield (
            {
                "R1CHAT_HOME": str(tmp_path / "home"),
                "HF_ENDPOINT": hub.endpoint,
                "HF_HOME": str(tmp_path / "hf"),
            },
            hub,
        )


def test_pull_and_delete_through_the_ollama_client(
    hub_env: tuple[dict[str, str], FakeHub], answer_model: ScriptedModel
) -> None:
    env, hub = hub_env
    repo = "someone/DeepSeek-R1-Distill-Qwen-7B-GGUF"
    hub.add(repo, "DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf", make_gguf_bytes(1_500_000))
    hub.describe(repo, downloads=10, params=7_615_616_512)
    with serving(answer_model.path, env={**os.environ, **env}) as s:
        c = client(s)
        progress = list(c.pull(f"hf.co/{repo}:Q4_K_M", stream=True))
        assert progress[0].status == "pulling manifest" and progress[-1].status == "success"
        fetched = [p for p in progress if p.total]
        assert fetched and fetched[-1].completed == fetched[-1].total == 1_500_000
        name = repo.lower()  # its one quantization: listed by the repo's name
        assert name in [m.model for m in c.list().models]
        assert c.show(f"hf.co/{repo}:Q4_K_M").details.format == "gguf"  # the name pulled
        c.delete(name)
        assert name not in [m.model for m in c.list().models]
        with pytest.raises(ollama.ResponseError) as e:
            c.delete(MODEL)  # the model being served stays
        assert e.value.status_code == 400
        with pytest.raises(ollama.ResponseError) as e:
            c.pull("nobody/nothing-GGUF:Q4_K_M")
        assert "nothing" in e.value.error and e.value.status_code == 404  # Ollama's shape
        with pytest.raises(ollama.ResponseError) as e:
            c.pull("deepseek-r1:999b")
        assert e.value.status_code == 404 and "unknown model 'deepseek-r1:999b'" in e.value.error
        with pytest.raises(ollama.ResponseError) as e:
            c.pull("deepseek-r1:1.5b")  # Ollama's name for r1:1.5b (this Hub has not its file)
        assert "DeepSeek-R1-Distill-Qwen-1.5B" in e.value.error
        with pytest.raises(ollama.ResponseError) as e:
            c.pull("a" * 5000)
        assert e.value.status_code == 400 and len(e.value.error) < 200  # not echoed whole
        lines = s.lines(wait_for="/api/pull 400")
        assert any("/api/pull 404" in line for line in lines)
        assert any(line.startswith(f"POST /api/pull 200 · pulled {name}") for line in lines)
        assert any(line.startswith("POST /api/pull 500 · r1:1.5b: ") for line in lines)


def test_a_model_that_does_not_reason_is_not_said_to_think(
    tmp_path: Path, smollm2_path: Path
) -> None:
    with serving(smollm2_path, "--ctx", "2048", env={"R1CHAT_HOME": str(tmp_path)}) as s:
        shown = client(s).show(smollm2_path.stem)
        assert set(shown.capabilities or []) == {"completion", "tools"}
