"""A conversation continued with `ask -c` outgrows a small context, through real llama.cpp
on the scripted model: drop-oldest answers, says so, records it; stop refuses in one line;
the history keeps every turn."""

from __future__ import annotations

import json

from r1chat.history.store import History
from tests.cli.test_ask import ask
from tests.fixtures.scripted import ScriptedModel

CTX = ["--ctx", "128", "--threads", "1"]


def grow(model: ScriptedModel, turns: int) -> None:
    first = ask("-m", str(model.path), *CTX, "What is 2+2?")
    assert first.returncode == 0, first.stderr
    for _ in range(turns - 1):
        more = ask("-c", "-m", str(model.path), "--ctx", "2048", "--threads", "1", "Again?")
        assert more.returncode == 0, more.stderr


def test_drop_oldest_keeps_answering_and_records_what_it_left_out(
    answer_model: ScriptedModel,
) -> None:
    grow(answer_model, 3)  # three exchanges of ~40 tokens: over 128 with room for a reply
    proc = ask("-c", "-m", str(answer_model.path), *CTX, "--json", "And now?")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["content"] == answer_model.answer
    left = out["stats"]["turns_left_out"]
    assert left >= 1
    assert f"the {left} oldest turn" in proc.stderr and "left out of the prompt" in proc.stderr
    dry = ask("-c", "-m", str(answer_model.path), *CTX, "--dry-run", "Last one?")
    assert dry.stdout.count("<｜User｜>") == 4 - left  # the newest and what fits
    with History() as history:
        conversation = history.list_conversations(limit=1)[0]
        messages = history.messages(conversation.id)
    assert sum(m.role == "user" for m in messages) == 4  # nothing deleted
    assert json.loads(json.dumps(messages[-1].stats))["turns_left_out"] == left


def test_stop_refuses_in_one_line(answer_model: ScriptedModel) -> None:
    grow(answer_model, 3)
    proc = ask("-c", "-m", str(answer_model.path), *CTX, "--overflow", "stop", "And now?")
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the conversation is ")
    assert "--overflow drop-oldest" in lines[0]


def test_the_newest_message_alone_over_the_context(answer_model: ScriptedModel) -> None:
    grow(answer_model, 2)
    proc = ask("-c", "-m", str(answer_model.path), *CTX, "word " * 200)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: the newest message alone is ")
    assert "Traceback" not in proc.stderr
