"""`--parallel N` against the machine: N KV caches that do not fit beside the model are
refused before llama.cpp allocates anything, in one line that says how many do."""

from __future__ import annotations

import pytest

from r1chat.core.errors import R1ChatError
from r1chat.launch.local import open_local
from r1chat.models import hardware
from r1chat.models.fit import Shape, memory_needed
from r1chat.models.hardware import Hardware
from tests.fixtures.scripted import ScriptedModel


def test_caches_that_do_not_fit_are_refused_saying_how_many_do(
    long_model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    shape = Shape.from_gguf(long_model.path)
    ctx = 32768
    # RAM for the model and two caches of `ctx`, not three
    ram = memory_needed(shape, 2 * ctx) + shape.kv_bytes(ctx) // 2
    monkeypatch.setattr(hardware, "_detected", Hardware(ram, ram, 2, (), "CPU"))
    with pytest.raises(R1ChatError) as e:
        open_local(long_model.path, n_ctx=ctx, gpu_layers=0, threads=1, sequences=3)
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith("--parallel 3: 3 KV caches of 32,768 tokens do not fit")
    assert "2 do (use --parallel 2 or a smaller --ctx)" in message
