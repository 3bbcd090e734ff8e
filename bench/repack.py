"""What llama.cpp's weight repacking is worth on this CPU, per quantization, in one run.

For each kind, a llama model of realistic width (n_embd 2048, n_ff 5632, 2 blocks, random
weights of that kind: `models.gguf_writer.write_llama`) is loaded with repacking on and off
(`engine.local.native.Model`, what `--repack`/`--no-repack` do), alternately, and
timed reading a 256-token prompt in one batch (prompt tok/s: the matrix-matrix kernels
repacking speeds up) and generating 64 tokens one at a time (decode tok/s: matrix-vector).
With `--smollm2 PATH`, the real SmolLM2-135M (Q4_1) too. A CPU whose repacked kernels
crash (r1chat's probe says so: `r1chat doctor`) is not measured "on".

Usage: python bench/repack.py [--runs 3] [--threads N] [--smollm2 PATH]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _common import median, table

from r1chat.engine.local.llama_log import route_llama_log
from r1chat.engine.local.native import Model
from r1chat.launch.repack import decide
from r1chat.models.gguf_writer import write_llama

KINDS = ("q4_0", "q4_k", "q8_0", "q4_1", "q6_k")
PROMPT, DECODE = 256, 64


def measure(path: Path, repack: bool, threads: int) -> tuple[float, float]:
    """(prompt tok/s, decode tok/s) of one load."""
    llm = Model(path, n_ctx=512, n_batch=PROMPT, threads=threads, gpu_layers=0, repack=repack)
    tokens = [(i * 7) % 250 + 3 for i in range(PROMPT)]
    start = time.perf_counter()
    llm.eval(tokens)
    prompt = time.perf_counter() - start
    start = time.perf_counter()
    for token in tokens[:DECODE]:
        llm.eval([token])
    decode = time.perf_counter() - start
    llm.close()
    return PROMPT / prompt, DECODE / decode


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--smollm2", type=Path)
    opts = ap.parse_args()
    kernels = decide("auto")
    print(f"repack decision here: {'on' if kernels.on else 'off'} ({kernels.why})\n")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        route_llama_log(Path(tmp) / "llama.log")  # (not on the table's terminal)
        models = {}
        for kind in KINDS:
            models[kind.upper()] = write_llama(
                Path(tmp) / f"{kind}.gguf",
                layers=((kind, kind),) * 2,
                n_embd=2048,
                n_ff=5632,
                n_head=16,
                output=kind,
            )
        if opts.smollm2:
            models["SmolLM2-135M Q4_1"] = opts.smollm2
        for name, path in models.items():
            got: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
            for _ in range(opts.runs):
                for repack in (False, True) if kernels.on else (False,):
                    got[repack].append(measure(path, repack, opts.threads))
            off_pp = median([p for p, _ in got[False]])
            off_tg = median([t for _, t in got[False]])
            if not got[True]:
                rows.append([name, f"{off_pp:,.0f}", "-", "-", f"{off_tg:,.1f}", "-", "-"])
                continue
            on_pp = median([p for p, _ in got[True]])
            on_tg = median([t for _, t in got[True]])
            rows.append(
                [
                    name,
                    f"{off_pp:,.0f}",
                    f"{on_pp:,.0f}",
                    f"{on_pp / off_pp:.2f}×",
                    f"{off_tg:,.1f}",
                    f"{on_tg:,.1f}",
                    f"{on_tg / off_tg:.2f}×",
                ]
            )
    print(f"## Repacking on this CPU ({opts.threads} threads, median of {opts.runs})\n")
    head = ["model", "prompt tok/s off", "on", "on/off", "decode tok/s off", "on", "on/off"]
    print(table(head, rows))


if __name__ == "__main__":
    main()
