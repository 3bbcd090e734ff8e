"""The idle-time prefill of a conversation with its answer (for the next turn) runs only
for replies a next turn may follow: an eval's samples skip it (it took a slot, and read
a whole sample again, for nothing)."""

from __future__ import annotations

import queue
from dataclasses import replace

from r1chat.config.settings import Settings
from r1chat.core.messages import Message
from r1chat.core.request import Request
from r1chat.core.turn import Guards
from r1chat.host.commands import Model, Reply, Start
from r1chat.host.model_host import ModelHost
from r1chat.host.outcomes import Item, JobEnded, Prefilled
from tests.fixtures.engines import Script


def run(reply: Reply) -> list[Item]:
    """What the host says for `reply`, until it has nothing more to say of it."""
    script = Script()
    inbox: queue.SimpleQueue[tuple[int, Item]] = queue.SimpleQueue()
    host = ModelHost.in_thread(inbox.put, Start(script.open_engine))
    host.send(reply)
    items: list[Item] = []
    try:
        while not any(isinstance(i, JobEnded) for i in items):
            items.append(inbox.get(timeout=10)[1])
    finally:
        host.stop()  # (waits for the reply's thread, its prefill included)
    while not inbox.empty():
        items.append(inbox.get()[1])
    assert len(script.opened) == 1
    assert bool(script.opened[0].prefilled) == any(isinstance(i, Prefilled) for i in items)
    return items


def test_a_reply_a_next_turn_may_follow_is_read_ahead_and_an_eval_sample_is_not() -> None:
    request = Request((Message("user", "What is 2+2?"),))
    reply = Reply(1, Model(Settings(model="scripted")), request, Guards())
    assert any(isinstance(i, Prefilled) for i in run(reply))
    assert not any(isinstance(i, Prefilled) for i in run(replace(reply, follow_up=False)))
