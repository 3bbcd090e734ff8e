"""A local model is run once as it loads (llama-server's warm-up), so that the first
reply does not pay for the model's first use; a reply follows on a cold cache."""

from __future__ import annotations

import queue
from pathlib import Path

from r1chat.config.settings import Settings
from r1chat.core.events import Done
from r1chat.core.messages import Message
from r1chat.core.request import Control, Request, Sampling
from r1chat.core.turn import run_turn
from r1chat.host.commands import Load, Model, Start
from r1chat.host.model_host import ModelHost
from r1chat.host.outcomes import Item, JobEnded, Loaded
from r1chat.launch.local import open_local
from tests.fixtures.engines import Script


def test_the_host_warms_a_model_up_as_it_loads_it() -> None:
    script = Script()
    inbox: queue.SimpleQueue[tuple[int, Item]] = queue.SimpleQueue()
    host = ModelHost.in_thread(inbox.put, Start(script.open_engine))
    host.send(Load(1, Model(Settings(model="scripted"))))
    items: list[Item] = []
    try:
        while not any(isinstance(i, JobEnded) for i in items):
            items.append(inbox.get(timeout=10)[1])
    finally:
        host.stop()
    assert any(isinstance(i, Loaded) for i in items)
    assert script.opened[0].warmed


def test_a_warmed_up_engine_answers_as_a_fresh_one(smollm2_path: Path) -> None:
    """The warm-up's token is forgotten: nothing of it is left in the cache."""
    request = Request((Message("user", "Name a fruit."),), Sampling(temperature=0.0, max_tokens=12))
    replies = []
    for warm in (False, True):
        engine = open_local(smollm2_path, n_ctx=1024, threads=1)
        try:
            if warm:
                engine.warm_up()
                assert engine._llm.cached == []
            done = list(run_turn(engine, request, Control()))[-1]
            assert isinstance(done, Done)
            replies.append((done.content, done.stats.cached_tokens))
        finally:
            engine.close()
    assert replies[0] == replies[1] and replies[0][0]
