"""Client overhead of the remote engine: r1chat's event rate against a bare httpx SSE reader.

A loopback server (tests/openai_server.py) streams 5,000 deltas as fast as it can (the
whole event stream is built beforehand and written at once), the way vLLM does with a
reasoning parser (half `reasoning_content`, half `content`) or as inline `<think>` text.
In the same run, alternating, it is read by

- a bare reader: httpx `iter_lines()`, `json.loads` of each `data:` line, the delta text;
- `RemoteEngine.stream()` alone (SSE decoding, JSON, channels, reader thread);
- `run_turn()` over the engine: what the UI and `ask` consume (splitter, loop guard, stats);
- the same with coalescing turned off (one `Delta` per server delta even in a burst), to
  show the per-delta cost that live generation (a few deltas per network read) pays.

A burst like this one arrives hundreds of deltas per network read; the engine then hands
runs of same-channel deltas to `run_turn` merged, 16 at most per `Delta`.

Target: `run_turn` at least 80% of the bare reader's server deltas per second.

Usage: python bench/remote_overhead.py [--deltas 5000] [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import time

from _common import median, table

from r1chat.core.events import AnswerDelta, Delta, ThinkingDelta
from r1chat.core.messages import Message
from r1chat.core.request import Control, Request
from r1chat.core.turn import Guards, run_turn
from r1chat.engine.remote import engine as remote
from r1chat.engine.remote.engine import RemoteEngine
from r1chat.engine.remote.http import httpx_module
from tests.fixtures.openai_server import OpenAIServer, burst_payload

MODEL = "deepseek-ai/DeepSeek-R1"


def body() -> dict:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": "go"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def bare(client, url: str) -> tuple[int, float]:
    """(deltas, seconds) for a plain httpx SSE loop."""
    n = 0
    start = time.perf_counter()
    with client.stream("POST", url + "/chat/completions", json=body()) as r:
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                break
            obj = json.loads(data)
            choices = obj.get("choices")
            if not choices:
                continue
            delta = choices[0]["delta"]
            text = delta.get("reasoning_content") or delta.get("content")
            if text:
                n += 1
    return n, time.perf_counter() - start


def engine_only(engine: RemoteEngine) -> tuple[int, float]:
    """(Deltas out, seconds) for the engine's stream alone."""
    n = 0
    start = time.perf_counter()
    for item in engine.stream(Request(messages=(Message("user", "go"),)), Control()):
        if isinstance(item, Delta) and item.text:
            n += 1
    return n, time.perf_counter() - start


def through_run_turn(engine: RemoteEngine) -> tuple[int, float]:
    """(Events out, seconds) through `run_turn`."""
    n = 0
    start = time.perf_counter()
    for e in run_turn(engine, Request(messages=(Message("user", "go"),)), Control(), Guards()):
        if type(e) is ThinkingDelta or type(e) is AnswerDelta:
            n += 1
    return n, time.perf_counter() - start


def uncoalesced(engine: RemoteEngine) -> tuple[int, float]:
    burst = remote.BURST
    remote.BURST = 1 << 30
    try:
        return through_run_turn(engine)
    finally:
        remote.BURST = burst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deltas", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    httpx = httpx_module()
    rows = []
    verdicts = []
    for inline in (False, True):
        mode = "inline <think> tags" if inline else "reasoning_content field"
        with OpenAIServer(models=(MODEL,)) as server:
            server.bench_payload = burst_payload(args.deltas, inline)
            client = httpx.Client(timeout=60)
            engine = RemoteEngine(server.url, model=MODEL)
            readers = {
                "bare httpx SSE reader": lambda c=client, u=server.url: bare(c, u),
                "RemoteEngine.stream()": lambda e=engine: engine_only(e),
                "run_turn(RemoteEngine)": lambda e=engine: through_run_turn(e),
                "run_turn, not coalesced": lambda e=engine: uncoalesced(e),
            }
            times: dict[str, list[float]] = {k: [] for k in readers}
            counts: dict[str, int] = {}
            for f in readers.values():  # warm up (connections, imports)
                f()
            ratios: dict[str, list[float]] = {k: [] for k in readers}
            for _ in range(args.runs):
                run: dict[str, float] = {}
                for name, f in readers.items():
                    n, seconds = f()
                    counts[name] = n
                    times[name].append(seconds)
                    run[name] = seconds
                for name in readers:  # each run against the bare reader of the same run
                    ratios[name].append(run["bare httpx SSE reader"] / run[name])
            client.close()
            engine.close()
        for name in readers:
            rate = args.deltas / median(times[name])
            rows.append(
                [
                    mode,
                    name,
                    args.deltas,
                    counts[name],
                    f"{median(times[name]) * 1000:.1f}",
                    f"{rate:,.0f}",
                    f"{median(ratios[name]):.0%}",
                ]
            )
        verdicts.append((mode, median(ratios["run_turn(RemoteEngine)"])))
    print(
        f"{args.deltas:,} deltas per reply, median of {args.runs} runs ('vs bare': median of "
        "the ratios to the bare reader of the same run), loopback, "
        f"client {httpx.__name__} {httpx.__version__}\n"
    )
    headers = ["stream", "reader", "server deltas", "events out", "ms", "deltas/s", "vs bare"]
    print(table(headers, rows))
    print()
    for mode, ratio in verdicts:
        status = "ok" if ratio >= 0.8 else "BELOW TARGET"
        print(f"{mode}: run_turn at {ratio:.0%} of the bare reader (target >= 80%): {status}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
