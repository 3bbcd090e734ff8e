"""Structured answers through `r1chat serve` and `ask`: `response_format` with the official
`openai` client (and its pydantic `parse`), Ollama's `format`, `ask --schema`; the
reasoning stays free. (The 400s for what cannot be honoured: `test_tools`.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import ollama
import openai
import pytest
from pydantic import BaseModel

from tests.fixtures.scripted import ScriptedModel
from tests.fixtures.serve import Serving, serving

HI = [{"role": "user", "content": "What is 2+2?"}]
MODEL = "scripted-answer"


class Sum(BaseModel):
    question: str
    answer: int


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, answer_model: ScriptedModel
) -> Iterator[Serving]:
    home = tmp_path_factory.mktemp("structured-home")
    with serving(answer_model.path, "--ctx", "2048", env={"R1CHAT_HOME": str(home)}) as s:
        yield s


def test_the_openai_client_parses_a_pydantic_answer(
    server: Serving, answer_model: ScriptedModel
) -> None:
    client = openai.OpenAI(base_url=server.url, api_key="unused")
    # (off its script the fixture writes random text: a seed keeps the string short)
    reply = client.beta.chat.completions.parse(
        model=MODEL, messages=HI, response_format=Sum, max_tokens=600, seed=1
    )
    message = reply.choices[0].message
    assert isinstance(message.parsed, Sum)
    # the reasoning is the model's own, not held to the schema
    reasoning = (message.model_extra or {})["reasoning_content"]
    assert reasoning.strip() == answer_model.reasoning.strip()
    whole = client.chat.completions.create(
        model=MODEL, messages=HI, response_format={"type": "json_object"}, max_tokens=600, seed=1
    )
    assert isinstance(json.loads(whole.choices[0].message.content or ""), dict)
    stream = client.chat.completions.create(
        model=MODEL,
        messages=HI,
        max_tokens=600,
        seed=1,
        stream=True,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "sum", "strict": True, "schema": Sum.model_json_schema()},
        },
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    Sum.model_validate_json(text)


def test_ollama_format(server: Serving) -> None:
    c = ollama.Client(host=server.url.removesuffix("/v1"), timeout=60)
    out = c.chat(
        model=MODEL,
        messages=HI,
        format=Sum.model_json_schema(),
        options={"num_predict": 600, "seed": 1},
    )
    Sum.model_validate_json(out.message.content)
    assert out.message.thinking
    anything = c.generate(
        model=MODEL, prompt="What is 2+2?", format="json", options={"num_predict": 600, "seed": 1}
    )
    assert isinstance(json.loads(anything.response), dict)


def test_ask_schema(answer_model: ScriptedModel, tmp_path: Path) -> None:
    schema = tmp_path / "sum.json"
    schema.write_text(json.dumps(Sum.model_json_schema()))
    env_home = {"R1CHAT_HOME": str(tmp_path / "home")}
    base = [sys.executable, "-m", "r1chat", "ask", "-m", str(answer_model.path), "--threads", "1"]
    env = {**os.environ, **env_home}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], capture_output=True, text=True, env=env)

    plain = run("--schema", str(schema), "What is 2+2?")
    assert plain.returncode == 0, plain.stderr
    Sum.model_validate_json(plain.stdout)  # stdout is the JSON answer, ready to pipe
    out = run("--json-object", "--json", "What is 2+2?")
    data = json.loads(out.stdout)
    assert isinstance(data["content"], dict) and data["reasoning_content"]
    bad = run("--schema", "[1, 2]", "hi")
    assert bad.returncode != 0 and "--schema" in bad.stderr and "Traceback" not in bad.stderr
    unheld = run("--schema", '{"type": "integer", "minimum": 5, "maximum": 1}', "hi")
    assert unheld.returncode == 2 and unheld.stdout == ""
    assert unheld.stderr == "error: --schema: minimum: minimum 5, maximum 1: no integer fits\n"
