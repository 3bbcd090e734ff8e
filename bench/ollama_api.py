"""Ollama's API on `r1chat serve` against its OpenAI API, in one run, on one server.

1. The long-trace fixture (6,000 tokens), streamed: decode tokens/s through `/api/chat`
   (NDJSON) against `/v1/chat/completions` (SSE), alternating, medians of `--runs`.
2. The server's RSS (its process and the model process) with the model loaded, and after
   `keep_alive` has unloaded it.

Usage: python bench/ollama_api.py [--runs 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2
from _common import median, table

from tests.fixtures.scripted import write_long_model
from tests.fixtures.serve import serving

PROMPT = [{"role": "user", "content": "Explain the plan."}]


def openai_rate(url: str) -> tuple[int, float]:
    """(tokens, tokens/s from the first token to the last) of one streamed /v1 reply."""
    body = {"messages": PROMPT, "stream": True, "stream_options": {"include_usage": True}}
    first = end = 0.0
    tokens = 0
    with httpx2.stream("POST", f"{url}/chat/completions", json=body, timeout=600) as r:
        for line in r.iter_lines():
            if '"usage"' in line:
                tokens = json.loads(line[6:])["usage"]["completion_tokens"]
            elif "content" in line:
                end = time.perf_counter()
                first = first or end
    return tokens, tokens / max(1e-9, end - first)


def ollama_rate(root: str) -> tuple[int, float]:
    """The same through /api/chat."""
    body = {"model": "scripted-long", "messages": PROMPT, "stream": True}
    first = end = 0.0
    tokens = 0
    with httpx2.stream("POST", f"{root}/api/chat", json=body, timeout=600) as r:
        for line in r.iter_lines():
            if '"done":true' in line:
                tokens = json.loads(line)["eval_count"]
            elif line:
                end = time.perf_counter()
                first = first or end
    return tokens, tokens / max(1e-9, end - first)


def rss_mb(pid: int) -> float:
    """RSS of `pid` and its children (the model process)."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    pids = [str(pid), *children.stdout.split()]
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="r1chat-ollama-bench-"))
    model = write_long_model(folder).path
    home = {"R1CHAT_HOME": str(folder / "home")}
    threads = ["--threads", str(args.threads)]
    with serving(model, *threads, "--ctx", "16384", "--keep-alive", "3s", env=home) as s:
        root = s.url.removesuffix("/v1")
        openai_rate(s.url)  # warm
        v1, api = [], []
        tokens = 0
        for _ in range(args.runs):
            tokens, rate = openai_rate(s.url)
            v1.append(rate)
            tokens, rate = ollama_rate(root)
            api.append(rate)
        loaded = rss_mb(s.proc.pid)
        deadline = time.monotonic() + 30
        while httpx2.get(f"{root}/api/ps").json()["models"] and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)
        unloaded = rss_mb(s.proc.pid)
    print(
        table(
            ["measure", "value"],
            [
                [f"/v1/chat/completions SSE, tok/s ({tokens:,} tokens)", f"{median(v1):,.0f}"],
                ["/api/chat NDJSON, tok/s", f"{median(api):,.0f}"],
                ["ratio /api / /v1 (target ≥ 0.95)", f"{median(api) / median(v1):.2f}×"],
                ["RSS, model loaded: server + model process (MB)", f"{loaded:,.0f}"],
                ["RSS after keep_alive unloaded it (MB)", f"{unloaded:,.0f}"],
            ],
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
