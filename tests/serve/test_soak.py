"""`r1chat serve` under load, through real llama.cpp on the scripted answer model (whose
reply is its script however it is batched): eight clients, twice the slots, send a mix of
requests (four APIs, streamed or not, prompts sharing long system prompts so that slots copy
them, follow-ups, clients hanging up mid-stream). Every request ends, none fails, each
answer is the script, and the server is idle afterwards. (A lost wake-up in the Batcher once
stalled every reply here within seconds.)"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator

import httpx2
import pytest

from tests.fixtures.scripted import ScriptedModel
from tests.fixtures.serve import Serving, serving

CLIENTS, REQUESTS = 8, 100  # each client's requests
STALLED_S = 60
"""A request unanswered this long has stalled (each takes well under a second)."""
RULES = "You are a careful coding agent. Read files before you change them. Keep changes small. "
SYSTEMS = [RULES * k for k in (1, 4, 8)]
MODEL = "scripted-answer"
QUESTIONS = ["What is 2+2?", "Name a fruit.", "Why is the sky blue?", "What is Python?"]


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, answer_model: ScriptedModel
) -> Iterator[Serving]:
    home = tmp_path_factory.mktemp("soak-home")
    flags = ("--ctx", "8192", "--parallel", "4", "--quiet")
    with serving(answer_model.path, *flags, env={"R1CHAT_HOME": str(home)}) as s:
        yield s


def chat_stream(client: httpx2.Client, url: str, body: dict, hang_up: int | None) -> str | None:
    """The streamed answer (None: hung up after `hang_up` lines)."""
    answer = []
    stalled = time.monotonic() + STALLED_S  # (a waiting stream is kept alive: no read times out)
    with client.stream("POST", f"{url}/chat/completions", json={**body, "stream": True}) as r:
        r.raise_for_status()
        for i, line in enumerate(r.iter_lines()):
            assert time.monotonic() < stalled, "a stream stalled"
            if hang_up is not None and i >= hang_up:
                return None
            if line.startswith("data: {"):
                for choice in json.loads(line[6:])["choices"]:
                    answer.append(choice["delta"].get("content") or "")
    return "".join(answer)


def one_request(client: httpx2.Client, url: str, rng: random.Random) -> tuple[str, str | None]:
    """A random request, as a client would send it: (its kind, the answer it got)."""
    system, question = rng.choice(SYSTEMS), rng.choice(QUESTIONS)
    messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
    root = url[: -len("/v1")]
    kind = rng.choice(["chat", "stream", "hang up", "follow-up", "messages", "responses", "ollama"])
    if kind == "chat":
        r = client.post(f"{url}/chat/completions", json={"messages": messages})
        r.raise_for_status()
        return kind, r.json()["choices"][0]["message"]["content"]
    if kind == "stream":
        return kind, chat_stream(client, url, {"messages": messages}, None)
    if kind == "hang up":
        return kind, chat_stream(client, url, {"messages": messages}, rng.randint(1, 6))
    if kind == "follow-up":
        follow = [*messages, {"role": "assistant", "content": "Four."}]
        follow.append({"role": "user", "content": "And then?"})
        return kind, chat_stream(client, url, {"messages": follow}, None)
    if kind == "messages":
        body = {"model": MODEL, "max_tokens": 256, "system": system, "messages": messages[1:]}
        r = client.post(f"{root}/v1/messages", json=body)
        r.raise_for_status()
        return kind, "".join(b["text"] for b in r.json()["content"] if b["type"] == "text")
    if kind == "responses":
        body = {"instructions": system, "input": question}
        r = client.post(f"{root}/v1/responses", json=body)
        r.raise_for_status()
        said = [i for i in r.json()["output"] if i["type"] == "message"]
        return kind, "".join(c["text"] for i in said for c in i["content"])
    r = client.post(f"{root}/api/chat", json={"messages": messages, "stream": False})
    r.raise_for_status()
    return kind, r.json()["message"]["content"]


def test_many_clients_with_every_kind_of_request_are_each_answered(
    server: Serving, answer_model: ScriptedModel
) -> None:
    answers: list[tuple[str, str | None]] = []
    failures: list[str] = []

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with httpx2.Client(timeout=STALLED_S) as c:
            for _ in range(REQUESTS):
                try:
                    answers.append(one_request(c, server.url, rng))
                except Exception as e:
                    failures.append(f"{type(e).__name__}: {e}")
                    return

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()  # (each request fails, at the latest, once it has stalled)
    assert failures == [] and len(answers) == CLIENTS * REQUESTS
    wrong = [
        (kind, got) for kind, got in answers if kind != "hang up" and got != answer_model.answer
    ]
    assert wrong == []
    health = httpx2.get(f"{server.url[: -len('/v1')]}/health", timeout=10).json()
    assert (health["running"], health["waiting"]) == (0, 0)
