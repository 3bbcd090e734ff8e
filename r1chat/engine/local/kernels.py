"""llama.cpp's repacked CPU kernels, on or off, and a probe that runs them.

At load, llama.cpp repacks quantized weights for faster matrix products on the CPU (its
"extra buffer types": AMX tiles, interleaved AVX2/AVX-512/NEON layouts). On a machine that
advertises instructions it cannot run (AMX under some hypervisors) those kernels kill the
process (SIGSEGV, SIGILL). `native.Model(..., repack=False)` loads without them, as
llama.cpp's `--no-repack` does.

`python -m r1chat.engine.local.kernels MODEL [--no-repack] [--threads N]` loads MODEL and
decodes a prompt and a few single tokens: the launch layer runs it in a child process,
where a crash costs nothing, and reads how it ended.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from r1chat.engine.local.native import Model

PROBE_TEXT = b"r1chat checks that the quantized matrix kernels of this CPU run: " * 2


def exercise(path: Path, *, repack: bool, threads: int) -> int:
    """Load `path`, evaluate a prompt in one batch (the matrix-matrix kernels) and a few
    tokens one at a time (matrix-vector); returns the tokens evaluated."""
    llm = Model(path, n_ctx=256, n_batch=128, threads=threads, gpu_layers=0, repack=repack)
    prompt = llm.tokenize(PROBE_TEXT, add_bos=True, special=False)[:120]
    llm.eval(prompt)
    for token in prompt[1:5]:
        llm.eval([token])
    evaluated = len(llm.cached)
    llm.close()
    return evaluated


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m r1chat.engine.local.kernels")
    parser.add_argument("model", type=Path)
    parser.add_argument("--no-repack", dest="repack", action="store_false")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    evaluated = exercise(args.model, repack=args.repack, threads=args.threads)
    print(f"ok: {evaluated} tokens", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
