"""`r1chat serve` against `r1chat ask` and `python -m llama_cpp.server`, in one run.

1. Long-trace fixture (6,000 tokens, streaming): decode tokens/s through the API against
   `r1chat ask --json` on the same model, and against llama-cpp-python's own server on the
   same file and request.
2. SmolLM2-135M (a real model): time to first token and tokens/s, the same request to both
   servers.
3. 200 short non-streaming requests from 4 concurrent clients: requests/s, and the
   server's RSS before and after.

Usage: python bench/serve_throughput.py [--runs 5] [--smollm2 PATH] [--threads N]

On a machine with as many llama.cpp threads as cores, the client reading the stream and
the server's event loop take cores from the model that `ask` keeps; leave one free.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx2
from _common import median, table

from tests.fixtures.scripted import write_answer_model, write_long_model
from tests.fixtures.serve import serving

MAX_TOKENS = 6000
_TEXT = re.compile(r'"(?:reasoning_)?content": ?"(?!")')  # a delta that carries text
PROMPT = "Explain the plan."


def stream_rate(url: str, body: dict) -> tuple[int, float, float]:
    """(tokens, seconds to the first token, tokens/s after it) of one streamed reply;
    tokens from `usage` when the server sends it, else one per text delta. Only the usage
    chunk is parsed: the client shares this machine's cores with the server."""
    start = time.perf_counter()
    first = end = 0.0
    deltas, usage = 0, None
    body = {**body, "stream": True, "stream_options": {"include_usage": True}}
    with httpx2.stream("POST", f"{url}/chat/completions", json=body, timeout=600) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            if '"usage"' in line:
                usage = json.loads(line[6:]).get("usage") or usage
            elif _TEXT.search(line):
                deltas += 1
                end = time.perf_counter()
                first = first or end
    tokens = usage["completion_tokens"] if usage else deltas
    return tokens, first - start, (tokens - 1) / (end - first) if end > first else 0.0


def ask_rate(args: list[str]) -> float:
    """`r1chat ask --json`'s own tokens/s (exit 3: the trace was all reasoning, as here)."""
    cmd = [sys.executable, "-m", "r1chat", "ask", "--json", *args]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode not in (0, 3):
        raise SystemExit(out.stderr)
    return float(json.loads(out.stdout)["stats"]["tokens_per_s"])


def rss_mib(pid: int) -> float:
    """The resident memory of `pid` and its children (r1chat serve's model process)."""
    total = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            total = int(line.split()[1]) / 1024
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            total += rss_mib(int(child))
    return total


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def llama_cpp_server(model: Path, threads: int, n_ctx: int):
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--n_threads",
        str(threads),
        "--n_gpu_layers",
        "-1",
        "--verbose",
        "False",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                httpx2.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).raise_for_status()
                break
            except httpx2.HTTPError:
                if proc.poll() is not None:
                    raise SystemExit("llama_cpp.server did not start") from None
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/v1", proc
    finally:
        proc.terminate()
        proc.wait(30)


def many(url: str, body: dict, total: int, clients: int) -> float:
    """Requests/s for `total` non-streaming requests from `clients` threads."""
    left = iter(range(total))
    lock = threading.Lock()
    failures: list[int] = []

    def client() -> None:
        with httpx2.Client(timeout=120) as c:
            while True:
                with lock:
                    if next(left, None) is None:
                        return
                r = c.post(f"{url}/chat/completions", json=body)
                if r.status_code != 200:
                    failures.append(r.status_code)

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise SystemExit(f"{len(failures)} requests failed: {sorted(set(failures))}")
    return total / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--smollm2", type=Path)
    ap.add_argument(
        "--threads",
        type=int,
        default=max(1, (os.cpu_count() or 2) - 1),
        help="llama.cpp threads (default: the cores but one, which the HTTP "
        "client and the server's event loop need)",
    )
    ap.add_argument(
        "--baseline-runs",
        type=int,
        default=1,
        help="runs of llama_cpp.server on the long trace (slow)",
    )
    opts = ap.parse_args()
    threads = ["--threads", str(opts.threads)]
    home = tempfile.mkdtemp(prefix="r1chat-bench-")
    env = {"R1CHAT_HOME": home}
    os.environ.update(env)
    folder = Path(tempfile.mkdtemp(prefix="r1chat-bench-models-"))
    long = write_long_model(folder)
    greedy = {"temperature": 0, "max_tokens": MAX_TOKENS}
    body = {"messages": [{"role": "user", "content": PROMPT}], **greedy}

    print(f"## 1. Long trace: {MAX_TOKENS:,} tokens streamed ({opts.threads} threads)\n")
    ask_args = [
        "-m",
        str(long.path),
        "--ctx",
        "8192",
        *threads,
        "--preset",
        "greedy",
        "--max-tokens",
        str(MAX_TOKENS),
        "--no-log",
        PROMPT,
    ]
    ask, ours = [], []
    with serving(long.path, "--ctx", "8192", *threads, "--quiet") as s:
        for _ in range(opts.runs):  # alternated: this machine's speed drifts
            ask.append(ask_rate(ask_args))
            ours.append(stream_rate(s.url, body)[2])
    with llama_cpp_server(long.path, opts.threads, 8192) as (url, _):
        theirs = [stream_rate(url, body)[2] for _ in range(opts.baseline_runs)]
    a, o, t = median(ask), median(ours), median(theirs)
    print(
        table(
            ["path", "tokens/s (median)", "vs ask --json"],
            [
                ["r1chat ask --json", f"{a:,.0f}", "1.00×"],
                ["r1chat serve (API, SSE)", f"{o:,.0f}", f"{o / a:.2f}×"],
                ["python -m llama_cpp.server", f"{t:,.0f}", f"{t / a:.2f}×"],
            ],
        )
    )
    print(f"\nr1chat serve / llama_cpp.server: {o / t:.1f}×\n")

    if opts.smollm2 and opts.smollm2.exists():
        print("## 2. SmolLM2-135M Q4_1: 200 tokens, greedy\n")
        small = {
            "messages": [{"role": "user", "content": "Write a poem about the sea."}],
            "temperature": 0,
            "max_tokens": 200,
            "seed": 1,
        }
        with (
            serving(opts.smollm2, "--ctx", "2048", *threads, "--quiet") as s,
            llama_cpp_server(opts.smollm2, opts.threads, 2048) as (url, _),
        ):
            stream_rate(s.url, small)  # warm up
            stream_rate(url, small)
            ours_runs, theirs_runs = [], []
            for _ in range(opts.runs):  # alternated, both servers up
                ours_runs.append(stream_rate(s.url, small))
                theirs_runs.append(stream_rate(url, small))
        rows = [
            ["r1chat serve", *_ttft_rate(ours_runs)],
            ["python -m llama_cpp.server", *_ttft_rate(theirs_runs)],
        ]
        print(table(["server", "time to first token (ms)", "tokens/s"], rows) + "\n")

    print("## 3. 200 short non-streaming requests, 4 concurrent clients\n")
    short = write_answer_model(folder)
    hi = {"messages": [{"role": "user", "content": "What is 2+2?"}], "temperature": 0}
    rows = []
    with serving(short.path, "--ctx", "2048", *threads, "--quiet", "--queue", "8") as s:
        before = rss_mib(s.proc.pid)
        rate = many(s.url, hi, 200, 4)
        rows.append(
            ["r1chat serve", f"{rate:,.1f}", f"{before:,.0f}", f"{rss_mib(s.proc.pid):,.0f}"]
        )
    with llama_cpp_server(short.path, opts.threads, 2048) as (url, proc):
        before = rss_mib(proc.pid)
        rate = many(url, hi, 200, 4)
        rows.append(
            [
                "python -m llama_cpp.server",
                f"{rate:,.1f}",
                f"{before:,.0f}",
                f"{rss_mib(proc.pid):,.0f}",
            ]
        )
    print(table(["server", "requests/s", "RSS before (MiB)", "RSS after (MiB)"], rows))


def _ttft_rate(runs: list[tuple[int, float, float]]) -> list[str]:
    return [f"{median([r[1] for r in runs]) * 1000:,.0f}", f"{median([r[2] for r in runs]):,.0f}"]


if __name__ == "__main__":
    main()
