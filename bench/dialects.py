"""One reply through each API `r1chat serve` speaks: OpenAI's chat completions (SSE),
Ollama's /api/chat (NDJSON), OpenAI's Responses and Anthropic's Messages (SSE events,
reasoning in their own blocks), in one run, on one server, alternating.

The long-trace fixture (6,000 tokens: reasoning, then the answer), streamed at 1 thread:
the wall time from the request to the stream's end as the client reads it, and the CPU
seconds the server's front process (HTTP, the dialect's writer) spent on it, medians of
`--runs`. Chat completions is the baseline: each dialect is a writer over the same reply.

Usage: python bench/dialects.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2
from _common import median, table

from tests.fixtures.scripted import write_long_model
from tests.fixtures.serve import serving

PROMPT = "Explain the plan."


def bodies(model: str) -> dict[str, tuple[str, dict[str, Any]]]:
    user = [{"role": "user", "content": PROMPT}]
    return {
        "/v1/chat/completions": (
            "/v1/chat/completions",
            {"messages": user, "stream": True},
        ),
        "/api/chat (Ollama)": ("/api/chat", {"model": model, "messages": user, "stream": True}),
        "/v1/responses": ("/v1/responses", {"model": model, "input": PROMPT, "stream": True}),
        "/v1/messages (Anthropic)": (
            "/v1/messages",
            {
                "model": model,
                "messages": user,
                "max_tokens": 12000,
                "thinking": {"type": "enabled", "budget_tokens": 10000},
                "stream": True,
            },
        ),
    }


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stream(root: str, path: str, body: dict[str, Any], pid: int) -> tuple[float, float, int]:
    """(wall seconds to the stream's end, the front process's CPU seconds, bytes)."""
    cpu = cpu_seconds(pid)
    start = time.perf_counter()
    size = 0
    with httpx2.stream("POST", root + path, json=body, timeout=600) as r:
        r.raise_for_status()
        for chunk in r.iter_bytes():
            size += len(chunk)
    return time.perf_counter() - start, cpu_seconds(pid) - cpu, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="r1chat-dialects-"))
    model = write_long_model(folder).path
    home = {"R1CHAT_HOME": str(folder / "home")}
    results: dict[str, list[tuple[float, float, int]]] = {}
    with serving(model, "--threads", "1", "--ctx", "16384", env=home) as s:
        root = s.url.removesuffix("/v1")
        name = httpx2.get(f"{s.url}/models").json()["data"][0]["id"]
        cases = bodies(name)
        stream(root, *cases["/v1/chat/completions"], s.proc.pid)  # (warm)
        for _ in range(args.runs):
            for label, (path, body) in cases.items():
                results.setdefault(label, []).append(stream(root, path, body, s.proc.pid))
    base = median([r[0] for r in results["/v1/chat/completions"]])
    rows = []
    for label, runs in results.items():
        wall, cpu = median([r[0] for r in runs]), median([r[1] for r in runs])
        rows.append([label, f"{wall:.2f}", f"{base / wall:.2f}x", f"{cpu:.2f}", f"{runs[0][2]:,}"])
    print(f"The 6,000-token fixture streamed, 1 thread, medians of {args.runs}")
    heads = ["API", "stream (s)", "vs chat completions", "front CPU (s)", "bytes"]
    print(table(heads, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
