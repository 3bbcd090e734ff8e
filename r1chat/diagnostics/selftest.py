"""`r1chat doctor`'s self-test: write a tiny quantized GGUF of every kind of tensor the
catalog ships and run it through llama.cpp's kernels (`engine.local.selftest`), on the
GPU when this build can offload, repacked or not as `launch.repack` decided."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from r1chat.engine.local.selftest import SelfTest


def run_self_test(*, repack: bool, n_tokens: int = 64, gpu: bool | None = None) -> SelfTest:
    """Write the tiny model to a temp dir, load it, generate `n_tokens`."""
    from r1chat.config import paths
    from r1chat.engine.local.selftest import run_kernels
    from r1chat.models.gguf_writer import write_tiny_llama

    with tempfile.TemporaryDirectory(prefix="r1chat-selftest-") as tmp:
        model = write_tiny_llama(Path(tmp) / "tiny.gguf", quantized=True)
        return run_kernels(model, paths.llama_log_file(), repack=repack, n_tokens=n_tokens, gpu=gpu)
