"""`r1chat serve` keeps serving when its model cannot: a model file that lies, and a model
process that dies mid-reply (a signal, as a crash inside llama.cpp would be)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.fixtures.lying import write_lying_model
from tests.fixtures.scripted import ScriptedModel
from tests.fixtures.serve import Serving, serving

HI = [{"role": "user", "content": "What is 2+2?"}]
R1_1_5B = "bartowski/DeepSeek-R1-Distill-Qwen-1.5B-GGUF/DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf"


def model_process(s: Serving) -> int:
    """The pid of the server's model process (its one child)."""
    children = []
    for task in Path(f"/proc/{s.proc.pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that ended meanwhile
            children += [int(pid) for pid in (task / "children").read_text().split()]
    assert len(children) == 1, children
    return children[0]


def chat(s: Serving, **body: Any) -> httpx2.Response:
    return httpx2.post(f"{s.url}/chat/completions", json={"messages": HI, **body}, timeout=60)


def test_a_model_that_lies_fails_its_request_and_the_server_goes_on(
    tmp_path: Path, answer_model: ScriptedModel
) -> None:
    home = tmp_path / "home"
    liar = write_lying_model(tmp_path, "layers")
    installed = home / "data" / "models" / R1_1_5B
    installed.parent.mkdir(parents=True)
    liar.rename(installed)  # as if pulled before r1chat checked headers
    with serving(answer_model.path, env={"R1CHAT_HOME": str(home)}) as s:
        listed = httpx2.get(f"{s.url}/models").json()["data"]
        assert "r1:1.5b" in [m["id"] for m in listed]
        refused = chat(s, model="r1:1.5b")
        assert refused.status_code == 500
        why = refused.json()["error"]["message"]
        assert "is not a model llama.cpp can load: its header says 2,147,483,648 layers" in why
        ok = chat(s)
        assert ok.status_code == 200
        assert ok.json()["choices"][0]["message"]["content"] == answer_model.answer


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGKILL])
def test_a_model_process_that_dies_mid_stream_fails_that_reply_only(
    tmp_path: Path, long_model: ScriptedModel, sig: signal.Signals
) -> None:
    env = {"R1CHAT_HOME": str(tmp_path / "home")}
    flags = ("--ctx", "8192", "--threads", "1", "--parallel", "1")  # the second one waits
    with serving(long_model.path, *flags, env=env) as s:
        first = model_process(s)
        waiting: dict[str, httpx2.Response] = {}
        objs: list[Any] = []
        with httpx2.stream(
            "POST", f"{s.url}/chat/completions", timeout=60, json={"messages": HI, "stream": True}
        ) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if not line.startswith("data: "):
                    continue
                objs.append(line[6:] if line == "data: [DONE]" else json.loads(line[6:]))
                if len(objs) == 20:  # streaming: queue another request, then crash
                    queued = threading.Thread(target=lambda: waiting.update(r=chat(s)))
                    queued.start()
                    while httpx2.get(f"{s.url[:-3]}/health").json()["waiting"] < 1:
                        pass  # until it is queued behind this one
                    os.kill(first, sig)
        assert objs[-1] == "[DONE]"
        error = objs[-2]["error"]
        assert error["type"] == "server_error"
        assert error["message"].startswith(
            f"the model process was killed by {sig.name} during this reply"
        )
        queued.join(60)
        assert waiting["r"].status_code == 200  # it waited, and a new process answered it
        assert waiting["r"].json()["choices"][0]["message"]["content"] == long_model.answer
        assert model_process(s) != first
        line = s.lines(wait_for="500")
        assert any(
            f"the model process was killed by {sig.name}; it is started again" in ln for ln in line
        )
        assert "Traceback" not in "\n".join(line)
