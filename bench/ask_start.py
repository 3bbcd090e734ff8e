"""`r1chat ask` as a whole process from launch, against llama.cpp's own `llama-completion`
on the same prompt, in one run, alternating.

1. Time to the first byte on stdout and to the process's end, SmolLM2-135M Q4_1, 20 tokens:
   `r1chat ask` (its default threads) vs `llama-completion` given the same prompt tokens
   (ask's chat-templated prompt, from `ask --dry-run`) and, as the issue first measured
   it, the bare three-token prompt.
2. A whole 400-token run: wall time and decode tokens/s (each counts its own tokens:
   `ask --json`'s stats, `llama-completion`'s "eval time" line), `--ignore-eos` for
   llama-completion, a prompt SmolLM2 writes at length for ask.

`llama-completion` is built from the llama.cpp vendored in llama-cpp-python's sdist, as
`bench/serve_parallel.py` says (`--target llama-completion`).

r1chat's modules are compiled to bytecode first, as an install leaves them (`_common`).

Usage: python bench/ask_start.py --llama-completion PATH [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ask_json, median, table

SMOLLM2 = Path.home() / ".cache" / "r1chat-tests" / "SmolLM2-135M-Instruct.Q4_1.gguf"
SHORT = "Say hi"
LONG = "Write a long story about a lighthouse keeper and the sea."


def first_byte(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str, str]:
    """(seconds to the first stdout byte, to the end, stdout, stderr) of `cmd`."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **env}, bufsize=0
    )  # (unbuffered: what read(1) took from the pipe is all it took)
    assert proc.stdout is not None and proc.stderr is not None
    head = proc.stdout.read(1)
    first = time.perf_counter() - start
    out, err = proc.communicate()
    end = time.perf_counter() - start
    return first, end, (head + out).decode(errors="replace"), err.decode(errors="replace")


def completion_rate(stderr: str) -> float:
    """llama-completion's decode tokens/s (its "eval time" line)."""
    for line in stderr.splitlines():
        if " eval time = " in line and "prompt eval" not in line:
            m = re.search(r"([\d.]+) tokens per second", line)
            return float(m.group(1)) if m else 0.0
    return 0.0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-completion", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    opts = ap.parse_args()
    env = {"R1CHAT_HOME": tempfile.mkdtemp(prefix="r1bench-")}
    model = str(SMOLLM2)
    th = str(opts.threads)
    native = [opts.llama_completion, "-m", model, "-t", th, "-c", "8192", "-no-cnv"]
    native += ["--no-display-prompt", "--temp", "0.6", "--min-p", "0"]  # (ask's sampling)
    templated = Path(env["R1CHAT_HOME"]) / "prompt.txt"
    templated.write_text(ask_json("--dry-run", "-m", model, SHORT, env=env)["prompt"])
    long_prompt = Path(env["R1CHAT_HOME"]) / "long.txt"
    long_prompt.write_text(ask_json("--dry-run", "-m", model, LONG, env=env)["prompt"])
    ask = [sys.executable, "-m", "r1chat", "ask", "-m", model, "--threads", th]

    starts: dict[str, list[tuple[float, float]]] = {}
    runs: dict[str, list[tuple[float, float, int]]] = {}
    for _ in range(opts.runs):  # alternating: each sees the same machine
        for name, cmd in (
            ("r1chat ask", [*ask, "--max-tokens", "20", SHORT]),
            ("llama-completion, the same prompt", [*native, "-n", "20", "-f", str(templated)]),
            ("llama-completion, the bare 3-token prompt", [*native, "-n", "20", "-p", SHORT]),
        ):
            first, end, _, _ = first_byte(cmd, env)
            starts.setdefault(name, []).append((first, end))
        _, end, out, _ = first_byte([*ask, "--json", "--max-tokens", "400", LONG], env)
        stats = json.loads(out)["stats"]
        n = stats["answer_tokens"] + stats["thinking_tokens"]
        runs.setdefault("r1chat ask --json", []).append((end, stats["tokens_per_s"], n))
        cmd = [*native, "-n", "400", "--ignore-eos", "-f", str(long_prompt)]
        _, end, _, err = first_byte(cmd, env)
        runs.setdefault("llama-completion", []).append((end, completion_rate(err), 400))

    print(
        f"## 1. Whole process, SmolLM2-135M Q4_1, {th} threads, 20 tokens (median of {opts.runs})\n"
    )
    rows = [
        [name, f"{median([s[0] for s in v]):.2f}", f"{median([s[1] for s in v]):.2f}"]
        for name, v in starts.items()
    ]
    print(table(["command", "first byte (s)", "end (s)"], rows))
    print(f"\n## 2. A 400-token run, {th} threads (median of {opts.runs})\n")
    rows = [
        [
            name,
            str(int(median([r[2] for r in v]))),
            f"{median([r[0] for r in v]):.2f}",
            f"{median([r[1] for r in v]):.1f}",
        ]
        for name, v in runs.items()
    ]
    print(table(["command", "tokens", "whole process (s)", "decode tokens/s"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
