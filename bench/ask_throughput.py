"""Decode throughput of `r1chat ask` against bare llama-cpp-python loops, in one run.

1. Long-trace fixture (6,000 reasoning tokens + a Markdown answer): `r1chat ask --json`
   vs a bare `Llama.generate()` loop with incremental UTF-8 decoding vs
   `create_chat_completion(stream=True)`.
2. `r1chat --help` / `--version` start-up time.
3. SmolLM2-135M (a real model): time to first token and tokens/s, ask vs bare loop.

Usage: python bench/ask_throughput.py [--runs 3] [--smollm2 PATH]
"""

from __future__ import annotations

import argparse
import codecs
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ask_json, median, table

from tests.fixtures.scripted import write_long_model

PROMPT = "Explain the plan."
SAMPLING = {"temp": 0.6, "top_p": 0.95, "top_k": 40, "min_p": 0.0}


def load(path: Path, threads: int):
    import llama_cpp

    return llama_cpp.Llama(
        model_path=str(path), n_ctx=8192, n_threads=threads, n_gpu_layers=-1, verbose=False
    )  # the same context, threads and offload as `ask` below


def bare_loop(llm, prompt: list[int], max_tokens: int = 100_000) -> tuple[int, float, float]:
    """(tokens, seconds to first token, decode seconds after it) of a plain generate loop."""
    import llama_cpp

    llm.reset()
    vocab = llm._model.vocab
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    text, n = [], 0
    start = time.perf_counter()
    first = None
    for tok in llm.generate(prompt, **SAMPLING):
        if first is None:
            first = time.perf_counter()
        if llama_cpp.llama_vocab_is_eog(vocab, tok) or n >= max_tokens:
            break
        n += 1
        text.append(decoder.decode(llm.detokenize([tok])))
    end = time.perf_counter()
    return n, first - start, end - first


def chat_completion_stream(llm) -> tuple[int, float]:
    llm.reset()
    start = time.perf_counter()
    n = 0
    for chunk in llm.create_chat_completion(
        [{"role": "user", "content": PROMPT}],
        stream=True,
        max_tokens=None,
        temperature=0.6,
        top_p=0.95,
        top_k=40,
        min_p=0.0,
    ):
        if chunk["choices"][0]["delta"].get("content"):
            n += 1
    return n, time.perf_counter() - start


def startup(args: list[str], runs: int = 10) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "r1chat", *args], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--smollm2", type=Path)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--skip-chat-completion", action="store_true")
    opts = ap.parse_args()
    env = {"R1CHAT_HOME": tempfile.mkdtemp(prefix="r1bench-")}
    threads = ["--threads", str(opts.threads)]

    with tempfile.TemporaryDirectory() as tmp:
        model = write_long_model(Path(tmp), thinking_tokens=6000, answer_tokens=1500)
        llm = load(model.path, opts.threads)
        prompt = ask_json("--dry-run", "-m", str(model.path), PROMPT, env=env)["tokens"]
        bare, ours = [], []
        for _ in range(opts.runs):  # alternate, so both see the same machine load
            n, _ttft, secs = bare_loop(llm, prompt)
            bare.append((n / secs, n))
            stats = ask_json("-m", str(model.path), *threads, PROMPT, env=env)["stats"]
            ours.append((stats["tokens_per_s"], stats["thinking_tokens"] + stats["answer_tokens"]))
        bare_tps, ours_tps = median([b[0] for b in bare]), median([o[0] for o in ours])
        rows = [
            ["bare Llama.generate() loop", bare[0][1], f"{bare_tps:,.0f}", "1.00"],
            ["r1chat ask --json", ours[0][1], f"{ours_tps:,.0f}", f"{ours_tps / bare_tps:.2f}"],
        ]
        chat_tps = None
        if not opts.skip_chat_completion:
            n, secs = chat_completion_stream(llm)
            chat_tps = n / secs
            rows.append(
                [
                    "create_chat_completion(stream=True)",
                    n,
                    f"{chat_tps:,.0f}",
                    f"{chat_tps / bare_tps:.2f}",
                ]
            )
        llm.close()
    print(f"## Decode throughput, long-trace fixture (median of {opts.runs} runs)\n")
    print(table(["engine", "tokens", "tokens/s", "vs bare"], rows))
    if chat_tps:
        print(f"\nr1chat ask: {ours_tps / chat_tps:.1f}x create_chat_completion(stream=True)")

    print("\n## Start-up (median of 10)\n")
    py = []
    for _ in range(10):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        py.append(time.perf_counter() - start)
    print(
        table(
            ["command", "seconds"],
            [
                ["python -c pass (floor)", f"{median(py):.3f}"],
                ["r1chat --help", f"{startup(['--help']):.3f}"],
                ["r1chat --version", f"{startup(['--version']):.3f}"],
            ],
        )
    )

    if opts.smollm2 and opts.smollm2.exists():
        llm = load(opts.smollm2, opts.threads)
        poem = "Write a short poem about the sea."
        prompt = ask_json("--dry-run", "-m", str(opts.smollm2), poem, env=env)["tokens"]
        b_ttft, b_tps, o_ttft, o_tps = [], [], [], []
        for _ in range(opts.runs):
            n, ttft, secs = bare_loop(llm, prompt, max_tokens=200)
            b_ttft.append(ttft)
            b_tps.append(n / secs)
            stats = ask_json(
                "-m", str(opts.smollm2), *threads, "--max-tokens", "200", poem, env=env
            )["stats"]
            o_ttft.append(stats["time_to_first_token_s"])
            o_tps.append(stats["tokens_per_s"])
        llm.close()
        print(f"\n## SmolLM2-135M Q4_1, CPU, {opts.threads} threads (median of {opts.runs})\n")
        print(
            table(
                ["engine", "time to first token (s)", "tokens/s"],
                [
                    ["bare Llama.generate() loop", f"{median(b_ttft):.3f}", f"{median(b_tps):.1f}"],
                    ["r1chat ask --json", f"{median(o_ttft):.3f}", f"{median(o_tps):.1f}"],
                ],
            )
        )


if __name__ == "__main__":
    main()
