"""A coding agent's turns: each request repeats a long system prompt and the whole
conversation so far, plus one new tool result. Time from the request to its reply, from
the client's side, `r1chat serve` against llama.cpp's own `llama-server -np 4`, same file,
same requests, one run, alternating.

The model is the tiny one with the real R1-Distill-Qwen tokenizer and chat template
(`tests/fixtures/tokenizer_model.py`; `pytest tests/engine/test_reading.py` builds it into
~/.cache/r1chat-tests/): its one layer decodes in no time, so what is measured is what a
server does per request around the model (reading the body, the template, tokenizing a
prompt of 12-20k tokens, finding it in a slot's cache), with 1 token generated. Both
servers hold the conversation in a slot's cache, so each turn reads only the new tokens.

llama-server is built as `bench/serve_parallel.py` says.

Usage: python bench/agent_turns.py --llama-server build/bin/llama-server [--rounds 3]
"""

from __future__ import annotations

import argparse
import inspect
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import httpx2
from _common import median, table
from serve_parallel import R1_TINY, llama_server

from tests.fixtures.serve import serving

TURNS = 8
SLOT_CTX = 32768


def source(module: ModuleType, start: int, size: int) -> str:
    """`size` characters of a standard-library module's source: prose and code, as an
    agent's system prompt and the files its tools read are (the same for a Python)."""
    return Path(inspect.getfile(module)).read_text()[start : start + size]


def conversation(turns: int) -> list[dict[str, str]]:
    """An agent's request at turn `turns`: a ~12k-token system prompt (argparse's source),
    then a file read by a tool each turn (~800 tokens of shutil's)."""
    messages = [
        {"role": "system", "content": source(argparse, 0, 60_000)},
        {"role": "user", "content": "Go."},
    ]
    for turn in range(turns):
        messages += [
            {"role": "assistant", "content": f"Reading part {turn}."},
            {"role": "user", "content": source(shutil, turn * 3000, 3000)},
        ]
    return messages


def turn(url: str, messages: list[dict[str, str]]) -> tuple[float, int]:
    """One request, 1 token: (seconds to its reply, prompt tokens)."""
    body = {"messages": messages, "max_tokens": 1, "temperature": 0}
    start = time.perf_counter()
    r = httpx2.post(f"{url}/chat/completions", json=body, timeout=600)
    r.raise_for_status()
    return time.perf_counter() - start, int(r.json()["usage"]["prompt_tokens"])


def session(url: str) -> list[tuple[float, int]]:
    turn(url, [{"role": "user", "content": "warm up"}])
    return [turn(url, conversation(n)) for n in range(TURNS)]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--llama-server", default=os.environ.get("LLAMA_SERVER"))
    args = parser.parse_args()
    if not R1_TINY.is_file():
        print(f"{R1_TINY} is missing: `pytest tests/engine/test_reading.py` builds it")
        return 1
    env = {"R1CHAT_HOME": tempfile.mkdtemp(prefix="r1chat-bench-")}
    flags = ("--ctx", str(SLOT_CTX), "--threads", "1", "--quiet")
    runs: dict[str, list[list[tuple[float, int]]]] = {"r1chat serve": [], "llama-server -np 4": []}
    for _ in range(args.rounds):
        with serving(R1_TINY, *flags, env=env) as s:
            runs["r1chat serve"].append(session(s.url))
        if args.llama_server:
            ctx = ("-c", str(4 * SLOT_CTX), "--override-kv", f"qwen2.context_length=int:{SLOT_CTX}")
            with llama_server(args.llama_server, R1_TINY, *ctx) as url:  # (the file says 4,096)
                runs["llama-server -np 4"].append(session(url))

    ours, theirs = runs["r1chat serve"], runs["llama-server -np 4"]
    rows = []
    for n in range(TURNS):
        a = median([r[n][0] for r in ours])
        b = median([r[n][0] for r in theirs]) if theirs else None
        row = [str(n + 1), str(ours[0][n][1]), f"{a * 1e3:.0f}"]
        row += [f"{b * 1e3:.0f}", f"{b / a:.2f}x"] if b is not None else ["", ""]
        rows.append(row)
    print(f"An agent's turns, tiny R1-tokenizer model, 1 token a reply, medians of {args.rounds}")
    heads = ["turn", "prompt tokens", "r1chat (ms)", "llama-server (ms)", "llama-server / r1chat"]
    print(table(heads, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
