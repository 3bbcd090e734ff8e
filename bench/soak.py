"""Under load: `r1chat serve --parallel 4` against llama.cpp's own `llama-server -np 4`, on
SmolLM2-135M (1 llama.cpp thread, 8,192 tokens of context), the same load on each.

Eight clients (twice the slots) send greedy chat completions for `--seconds` each: six
questions under three system prompts that share their start (so that slots copy them),
streamed or not, and one request in five hangs up after a few chunks. For each server:
the requests answered, those that failed (and the first error), those that stalled (no
answer in 60 s), and the greedy replies that differ from the same request sent alone to
that server (batching changes the kernels' last bits, so some may).

llama-server: see `bench/serve_parallel.py` (left out when `--llama-server` is not given).

Usage: python bench/soak.py [--seconds 120] [--llama-server PATH]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from collections import Counter

import httpx2
from _common import table
from serve_parallel import SMOLLM2, llama_server

from tests.fixtures.serve import serving

CLIENTS = 8
TOKENS = 16
STALLED_S = 60
RULES = "You are a careful assistant. Answer briefly, and say when you are unsure. "
SYSTEMS = [RULES * k for k in (1, 3, 6)]
QUESTIONS = [
    "What is 2+2?",
    "Name a fruit.",
    "Why is the sky blue?",
    "Tell me about cats.",
    "What is Python?",
    "Write a haiku.",
]


def ask(
    c: httpx2.Client, url: str, messages: list, stream: bool, hang_up: int | None
) -> str | None:
    """The reply's text (None: hung up after `hang_up` lines)."""
    body = {"messages": messages, "temperature": 0, "max_tokens": TOKENS, "stream": stream}
    if not stream:
        r = c.post(f"{url}/chat/completions", json=body)
        r.raise_for_status()
        return r.json()["choices"][0]["message"]["content"] or ""
    text, stalled = [], time.monotonic() + STALLED_S
    with c.stream("POST", f"{url}/chat/completions", json=body) as r:
        r.raise_for_status()
        for i, line in enumerate(r.iter_lines()):
            if time.monotonic() > stalled:
                raise TimeoutError("stalled")
            if hang_up is not None and i >= hang_up:
                return None
            if line.startswith("data: {"):
                for choice in json.loads(line[6:]).get("choices", []):
                    text.append(choice["delta"].get("content") or "")
    return "".join(text)


def soak(url: str, seconds: float) -> list[object]:
    """The load on one server: its row of the table."""
    conversations = [
        [{"role": "system", "content": s}, {"role": "user", "content": q}]
        for s in SYSTEMS
        for q in QUESTIONS
    ]
    with httpx2.Client(timeout=STALLED_S) as c:
        alone = {json.dumps(m): ask(c, url, m, False, None) for m in conversations}
    counts: Counter[str] = Counter()
    errors: list[str] = []
    end = time.monotonic() + seconds

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with httpx2.Client(timeout=STALLED_S) as c:
            while time.monotonic() < end:
                m = rng.choice(conversations)
                hang_up = rng.randint(1, 6) if rng.random() < 0.2 else None
                try:
                    got = ask(c, url, m, hang_up is not None or rng.random() < 0.5, hang_up)
                except (httpx2.TimeoutException, TimeoutError):
                    counts["stalled"] += 1
                    return
                except Exception as e:
                    counts["failed"] += 1
                    errors.append(f"{type(e).__name__}: {e}"[:120])
                    continue
                if got is None:
                    counts["hung up"] += 1
                else:
                    counts["answered"] += 1
                    counts["differs"] += got != alone[json.dumps(m)]

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    answered, differs = counts["answered"], counts["differs"]
    share = f"{differs} ({100 * differs / max(answered, 1):.0f}%)"
    cells = [answered, counts["hung up"], counts["failed"], counts["stalled"], share]
    return [*cells, errors[0] if errors else "-"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--llama-server")
    args = parser.parse_args()
    rows = []
    home = {"R1CHAT_HOME": tempfile.mkdtemp(prefix="r1chat-soak-")}
    flags = ("--parallel", "4", "--threads", "1", "--ctx", "8192", "--quiet")
    with serving(SMOLLM2, *flags, env=home) as s:
        rows.append(["r1chat serve --parallel 4", *soak(s.url, args.seconds)])
    if args.llama_server:
        with llama_server(args.llama_server, SMOLLM2) as url:
            rows.append(["llama-server -np 4", *soak(url, args.seconds)])
    print(f"{CLIENTS} clients for {args.seconds:.0f} s each, SmolLM2-135M Q4_1, 1 thread, greedy")
    heads = [
        "server",
        "answered",
        "hung up",
        "failed",
        "stalled",
        "differ from alone",
        "first error",
    ]
    print(table(heads, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
