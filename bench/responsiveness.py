"""The figures the tests used to assert with timers: how fast the commands that only read
the catalog start, and how soon a remote reply ends after a cancel or timeout.

Start-up: `r1chat models` and `r1chat models info r1:7b` (no llama_cpp import) against the
bare interpreter (`python -c pass`) and `python -c "import r1chat.__main__"`, best of N.
Remote: a loopback server that goes silent (after three deltas, or before the response
head); seconds from `Control.cancel()` (or the start, for the 0.5 s read timeout) to the
end of `run_turn`, and to the moment the server sees the connection close.

Targets: the catalog commands under 0.5 s over the bare interpreter; a cancel ends the turn
within 0.5 s and closes the connection within 1.5 s.

Usage: python bench/responsiveness.py [--runs 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time

from _common import ROOT, median, table

from r1chat.core.errors import R1ChatError
from r1chat.core.events import ThinkingDelta
from r1chat.core.messages import Message
from r1chat.core.request import Control, Request
from r1chat.core.turn import run_turn
from r1chat.engine.remote.engine import RemoteEngine
from tests.fixtures.openai_server import Fault, OpenAIServer

QUESTION = (Message("user", "What is 2+2?"),)


def startup(runs: int) -> list[list[object]]:
    home = tempfile.mkdtemp()
    env = {**os.environ, "R1CHAT_HOME": home, "PYTHONPATH": str(ROOT)}
    cases = {
        "python -c pass (baseline)": ["-c", "pass"],
        "import r1chat.__main__": ["-c", "import r1chat.__main__"],
        "r1chat models": ["-m", "r1chat", "models"],
        "r1chat models info r1:7b": ["-m", "r1chat", "models", "info", "r1:7b"],
    }
    best = {}
    for name, args in cases.items():
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, *args], env=env, capture_output=True, check=True)
            times.append(time.perf_counter() - t0)
        best[name] = min(times)
    base = best["python -c pass (baseline)"]
    return [[n, f"{t:.3f}", f"+{t - base:.3f}"] for n, t in best.items()]


def cancel_stream(server: OpenAIServer) -> tuple[float, float]:
    server.disconnects.clear()
    server.fail(Fault(stall_after=3))
    control = Control()
    engine = RemoteEngine(server.url, backoff=0.01)
    seen, at = 0, 0.0
    for event in run_turn(engine, Request(messages=QUESTION), control):
        if isinstance(event, ThinkingDelta):
            seen += 1
            if seen == 3:
                time.sleep(0.1)
                at = time.monotonic()  # the clock the server stamps disconnects with
                control.cancel()
    ended = time.monotonic()
    while not server.disconnects:
        time.sleep(0.001)
    return ended - at, server.disconnects[0] - at


def cancel_waiting(server: OpenAIServer) -> float:
    server.fail(Fault(delay=3.0))
    control = Control()
    engine = RemoteEngine(server.url, model=server.models[0], backoff=0.01)
    timer = threading.Timer(0.2, control.cancel)
    t0 = time.perf_counter()
    timer.start()
    list(run_turn(engine, Request(messages=QUESTION), control))
    return time.perf_counter() - t0 - 0.2


def read_timeout(server: OpenAIServer) -> float:
    server.fail(Fault(delay=3.0))
    engine = RemoteEngine(server.url, model=server.models[0], timeout=0.5, backoff=0.01)
    t0 = time.perf_counter()
    with contextlib.suppress(R1ChatError):  # the timeout is what is measured
        list(run_turn(engine, Request(messages=QUESTION), Control()))
    return time.perf_counter() - t0 - 0.5


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    runs = ap.parse_args().runs
    print("Start-up, best of", runs)
    print(table(["command", "seconds", "over baseline"], startup(runs)))
    with OpenAIServer() as server:
        streams = [cancel_stream(server) for _ in range(runs)]
        waits = [cancel_waiting(server) for _ in range(runs)]
        timeouts = [read_timeout(server) for _ in range(runs)]
    print(f"\nRemote stop latency, median of {runs} (seconds)")
    print(
        table(
            ["case", "turn ended after", "connection closed after"],
            [
                [
                    "cancel a silent stream",
                    f"{median([s[0] for s in streams]):.3f}",
                    f"{median([s[1] for s in streams]):.3f}",
                ],
                ["cancel before the response head", f"{median(waits):.3f}", "-"],
                ["0.5 s read timeout (beyond 0.5 s)", f"{median(timeouts):.3f}", "-"],
            ],
        )
    )


if __name__ == "__main__":
    main()
