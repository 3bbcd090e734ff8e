"""Several clients at once (`r1chat serve --parallel N`), through real llama.cpp and the
official `openai` client: concurrent replies are the replies each would get alone, a
client that leaves frees its slot, each request keeps its own sampling, a follow-up finds
its conversation's cache, `max_tokens` leaves room for an answer, and a queued stream is
kept alive."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from tests.fixtures.scripted import ScriptedModel
from tests.fixtures.serve import Serving, serving

HI = [{"role": "user", "content": "What is 2+2?"}]


def at_once(n: int, work: Callable[[int], Any]) -> list[Any]:
    """`work(i)` for i in range(n), on n threads started together; the results in order."""
    out: list[Any] = [None] * n
    start = threading.Barrier(n)

    def run(i: int) -> None:
        start.wait()
        out[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


def streamed(client: openai.OpenAI, **kw: Any) -> tuple[str, str]:
    """(reasoning, answer) of one streamed reply."""
    reasoning, answer = [], []
    for chunk in client.chat.completions.create(stream=True, **kw):
        for c in chunk.choices:
            reasoning.append((c.delta.model_extra or {}).get("reasoning_content") or "")
            answer.append(c.delta.content or "")
    return "".join(reasoning), "".join(answer)


@pytest.fixture(scope="module")
def scripted(
    tmp_path_factory: pytest.TempPathFactory, answer_model: ScriptedModel
) -> Iterator[Serving]:
    home = tmp_path_factory.mktemp("parallel-home")
    flags = ("--ctx", "2048", "--parallel", "4", "--quiet")
    with serving(answer_model.path, *flags, env={"R1CHAT_HOME": str(home)}) as s:
        yield s


def test_four_concurrent_streams_are_each_what_a_lone_request_gives(
    scripted: Serving, answer_model: ScriptedModel
) -> None:
    client = openai.OpenAI(base_url=scripted.url, api_key="x")
    alone = streamed(client, model="scripted-answer", messages=HI)
    assert alone == (answer_model.reasoning.rstrip("\n"), answer_model.answer)
    together = at_once(4, lambda i: streamed(client, model="scripted-answer", messages=HI))
    assert together == [alone] * 4


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path) -> Iterator[Serving]:
    home = tmp_path_factory.mktemp("parallel-smollm2")
    flags = ("--ctx", "1024", "--parallel", "4", "--threads", "1", "--quiet")
    with serving(smollm2_path, *flags, env={"R1CHAT_HOME": str(home)}) as s:
        yield s


QUESTIONS = ["Tell me about cats.", "What is Python?", "Why is the sky blue?", "Name a fruit."]


def test_smollm2_greedy_replies_at_once_match_their_sequential_replies(smollm2: Serving) -> None:
    client = openai.OpenAI(base_url=smollm2.url, api_key="x")
    model = smollm2_model(smollm2)

    def ask(i: int) -> str:
        messages = [{"role": "user", "content": QUESTIONS[i]}]
        reply = client.chat.completions.create(
            messages=messages, model=model, temperature=0, max_tokens=64
        )
        return reply.choices[0].message.content or ""

    sequential = [ask(i) for i in range(4)]
    together = at_once(4, ask)
    # each the same text (batched kernels could differ in the last bits; they do not here)
    assert together == sequential


def smollm2_model(s: Serving) -> str:
    return str(httpx2.get(f"{s.url}/models", timeout=10).json()["data"][0]["id"])


def test_each_request_keeps_its_own_sampling(smollm2: Serving) -> None:
    client = openai.OpenAI(base_url=smollm2.url, api_key="x")
    model = smollm2_model(smollm2)

    def ask(seed: int) -> str:
        messages = [{"role": "user", "content": "Write a poem."}]
        reply = client.chat.completions.create(
            model=model, messages=messages, temperature=1.0, seed=seed, max_tokens=32
        )
        return reply.choices[0].message.content or ""

    one, two, one_again, greedy = at_once(4, lambda i: ask([1, 2, 1, 3][i]))
    assert one == one_again and one != two and greedy


def test_a_follow_up_finds_its_conversation_cached(smollm2: Serving) -> None:
    client = openai.OpenAI(base_url=smollm2.url, api_key="x")
    model = smollm2_model(smollm2)
    first = [{"role": "user", "content": "Tell me a long story about a dragon and a knight."}]
    reply = client.chat.completions.create(model=model, messages=first, max_tokens=32)
    answer = reply.choices[0].message.content or ""
    # other conversations in between, on the other slots
    at_once(
        3,
        lambda i: client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": QUESTIONS[i]}], max_tokens=8
        ),
    )
    follow = [
        *first,
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "Go on."},
    ]
    again = client.chat.completions.create(model=model, messages=follow, max_tokens=8)
    usage = again.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert reply.usage is not None
    assert (usage.prompt_tokens_details.cached_tokens or 0) >= reply.usage.prompt_tokens - 1


def test_a_prompt_asked_again_goes_to_the_slot_holding_it(smollm2: Serving) -> None:
    """Four conversations (replies longer than their prompts) fill the four slots; the
    second one's question asked again (a retry) reuses its own slot, not the least recently
    used one: the first conversation stays cached for its follow-up."""
    client = openai.OpenAI(base_url=smollm2.url, api_key="x")
    model = smollm2_model(smollm2)
    asked = [[{"role": "user", "content": q}] for q in ASKED]
    replies = [
        client.chat.completions.create(model=model, messages=m, max_tokens=64) for m in asked
    ]
    client.chat.completions.create(model=model, messages=asked[1], max_tokens=8)
    follow = [
        *asked[0],
        {"role": "assistant", "content": replies[0].choices[0].message.content or ""},
        {"role": "user", "content": "Another."},
    ]
    again = client.chat.completions.create(model=model, messages=follow, max_tokens=8)
    usage, first = again.usage, replies[0].usage
    assert usage is not None and usage.prompt_tokens_details is not None and first is not None
    assert (usage.prompt_tokens_details.cached_tokens or 0) >= first.prompt_tokens - 1


ASKED = [f"Tell me a long story about {a}." for a in ("a dragon", "the sea", "a robot", "a king")]

LONG_QUESTION = (
    "Here is a list of facts about the solar system. The Sun is a star. Mercury is the "
    "closest planet to the Sun. Venus is the hottest planet. Earth has one moon. Mars is "
    "red because of iron oxide. Jupiter is the largest planet. Saturn has bright rings. "
    "Uranus rotates on its side. Neptune has the strongest winds. Pluto is a dwarf planet. "
    "Using only these facts, which planet is the largest?"
)


def test_a_prompt_another_slot_holds_is_copied_not_read_again(smollm2: Serving) -> None:
    """Four requests with the prompt that one slot holds (followed there by another
    reply): each starts from a copy of that slot's cache (all four report it as cached),
    and the copies are right (each greedy reply is the lone request's)."""
    client = openai.OpenAI(base_url=smollm2.url, api_key="x", max_retries=0)
    model = smollm2_model(smollm2)
    messages = [{"role": "user", "content": LONG_QUESTION}]

    def ask(i: int, temperature: float = 0) -> tuple[str, int, int]:
        reply = client.chat.completions.create(
            model=model, messages=messages, temperature=temperature, seed=5, max_tokens=24
        )
        usage = reply.usage
        assert usage is not None and usage.prompt_tokens_details is not None
        cached = usage.prompt_tokens_details.cached_tokens or 0
        return reply.choices[0].message.content or "", cached, usage.prompt_tokens

    alone = ask(0)[0]
    assert alone and ask(0, temperature=1.5)[0] != alone  # what the slot holds goes on apart
    together = at_once(4, ask)
    assert [t[0] for t in together] == [alone] * 4
    assert all(cached >= prompt - 1 for _, cached, prompt in together)


def test_a_client_that_leaves_frees_its_slot(tmp_path: Path, long_model: ScriptedModel) -> None:
    flags = ("--ctx", "8192", "--parallel", "2", "--quiet")
    with serving(long_model.path, *flags, env={"R1CHAT_HOME": str(tmp_path)}) as s:
        client = openai.OpenAI(base_url=s.url, api_key="x")
        body = {"messages": HI, "stream": True}
        leaving = httpx2.Client(timeout=60)
        response = leaving.send(
            leaving.build_request("POST", f"{s.url}/chat/completions", json=body), stream=True
        )
        lines = response.iter_lines()
        next(lines)
        kept = threading.Thread(
            target=lambda: results.append(streamed(client, model="scripted-long", messages=HI))
        )
        results: list[tuple[str, str]] = []
        kept.start()
        time.sleep(0.2)
        response.close()  # the first client leaves mid-reply
        leaving.close()
        # its slot is free: a third request runs beside the one still streaming
        third = streamed(client, model="scripted-long", messages=HI)
        kept.join(60)
        expected = (long_model.reasoning.rstrip("\n"), long_model.answer)
        assert results == [expected] and third == expected


def test_max_tokens_leaves_room_for_an_answer(tmp_path: Path, long_model: ScriptedModel) -> None:
    with serving(
        long_model.path, "--ctx", "8192", "--quiet", env={"R1CHAT_HOME": str(tmp_path)}
    ) as s:
        client = openai.OpenAI(base_url=s.url, api_key="x")
        reply = client.chat.completions.create(model="scripted-long", messages=HI, max_tokens=64)
        assert reply.choices[0].message.content  # cut, but an answer
        extra = reply.model_extra or {}
        assert extra["r1chat"]["thinking_stopped_by"] == "answer_room"


def test_a_queued_stream_is_kept_alive(tmp_path: Path, loop_model: ScriptedModel) -> None:
    flags = ("--ctx", "32768", "--parallel", "1", "--quiet")
    with serving(loop_model.path, *flags, env={"R1CHAT_HOME": str(tmp_path)}) as s:
        # a reply that reasons for ~30,000 tokens holds the one slot for some seconds
        unguarded = {"loop_guard": False, "think_budget": 30000}
        long = {"messages": HI, "max_tokens": 30000, "r1chat": unguarded, "stream": True}
        done = threading.Event()

        def hold() -> None:
            """Stream the long reply until the queued one has been kept alive, then hang up
            (however slow the machine, the test waits for no 30,000 tokens)."""
            with httpx2.stream("POST", f"{s.url}/chat/completions", json=long, timeout=120) as r:
                for _ in r.iter_lines():
                    if done.is_set():
                        return

        runner = threading.Thread(target=hold)
        runner.start()
        health = f"{s.url[: -len('/v1')]}/health"
        while httpx2.get(health, timeout=10).json()["running"] < 1:
            time.sleep(0.02)  # until the long reply holds the slot
        comments = 0
        body = {"messages": HI, "stream": True, "max_tokens": 8}
        with httpx2.stream("POST", f"{s.url}/chat/completions", json=body, timeout=120) as r:
            for line in r.iter_lines():
                if line.startswith(": waiting for a free slot"):
                    comments += 1
                    done.set()  # the slot is let go: this one is answered
        runner.join(120)
        assert comments >= 1 and not runner.is_alive()
