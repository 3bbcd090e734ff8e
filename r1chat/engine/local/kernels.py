"""llama.cpp's repacked CPU kernels, on or off, and a probe that runs them.

At load, llama.cpp repacks quantized weights for faster matrix products on the CPU (its
"extra buffer types": AMX tiles, interleaved AVX2/AVX-512/NEON layouts). On a machine that
advertises instructions it cannot run (AMX under some hypervisors) those kernels kill the
process (SIGSEGV, SIGILL). `load_llama(..., repack=False)` loads without them, as
llama.cpp's `--no-repack` does.

`python -m r1chat.engine.local.kernels MODEL [--no-repack] [--threads N]` loads MODEL and
decodes a prompt and a few single tokens: the launch layer runs it in a child process,
where a crash costs nothing, and reads how it ended.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_params_lock = threading.Lock()


@contextlib.contextmanager
def _model_params(repack: bool) -> Iterator[None]:
    """llama-cpp-python builds the model parameters inside `Llama()` and takes no
    `use_extra_bufts`: wrap its defaults for the length of one load."""
    if repack:  # llama.cpp's default
        yield
        return
    from llama_cpp import llama_cpp as lib

    original = lib.llama_model_default_params

    def without_repacking() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    lib.llama_model_default_params = without_repacking
    try:
        yield
    finally:
        lib.llama_model_default_params = original


@contextlib.contextmanager
def _context_params(sequences: int) -> Iterator[None]:
    """`Llama()` takes no `n_seq_max` either: a context for `sequences` replies at once,
    each with a KV cache of its own (`n_ctx` is theirs together)."""
    if sequences == 1:
        yield
        return
    from llama_cpp import llama_cpp as lib

    original = lib.llama_context_default_params

    def for_sequences() -> Any:
        params = original()
        params.n_seq_max, params.kv_unified = sequences, False
        return params

    lib.llama_context_default_params = for_sequences
    try:
        yield
    finally:
        lib.llama_context_default_params = original


def load_llama(path: str | Path, *, repack: bool, sequences: int = 1, **kwargs: Any) -> Any:
    """`llama_cpp.Llama(model_path=path, **kwargs)`, with or without repacked kernels,
    its context for `sequences` replies at once."""
    import llama_cpp

    with _params_lock, _model_params(repack), _context_params(sequences):
        return llama_cpp.Llama(model_path=str(path), **kwargs)


PROBE_TEXT = b"r1chat checks that the quantized matrix kernels of this CPU run: " * 2


def exercise(path: Path, *, repack: bool, threads: int) -> int:
    """Load `path`, evaluate a prompt in one batch (the matrix-matrix kernels) and a few
    tokens one at a time (matrix-vector); returns the tokens evaluated."""
    llm = load_llama(
        path,
        repack=repack,
        n_ctx=256,
        n_batch=128,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    prompt = llm.tokenize(PROBE_TEXT, add_bos=True)[:120]
    llm.eval(prompt)
    for token in prompt[1:5]:
        llm.eval([token])
    evaluated = int(llm.n_tokens)
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
