"""`r1chat doctor`'s self-test: a tiny quantized GGUF run through llama.cpp.

The model (`models.gguf_writer.write_tiny_llama(quantized=True)`, written by the caller:
`diagnostics.selftest`) is a 3-layer llama with
random Q4_0, Q4_1, Q4_K, Q5_K, Q6_K and Q8_0 matrices and a 262-token byte vocabulary,
about 1.8 MB. It loads in milliseconds and goes through the real load, offload, prompt
evaluation and sampling path with the kernels a real quantized model uses: on the GPU
when this llama.cpp build can offload, and on the CPU repacked or not as `launch.repack`
decided for real models.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class SelfTest:
    ok: bool
    offload: bool  # llama.cpp reports it can offload
    gpu_layers: int  # what was asked: -1 all, 0 none
    load_seconds: float = 0.0
    prompt_tokens: int = 0
    tokens: int = 0
    tokens_per_second: float = 0.0
    error: str = ""


def run_kernels(
    model_path: Path, log_path: Path, *, repack: bool, n_tokens: int = 64, gpu: bool | None = None
) -> SelfTest:
    """Load the tiny model at `model_path` (offloaded if possible; repacked as `repack`
    says; llama.cpp's log to `log_path`) and generate."""
    from r1chat.core.request import Sampling
    from r1chat.engine.local.constrained import constrained
    from r1chat.engine.local.kernels import PROBE_TEXT
    from r1chat.engine.local.llama_log import route_llama_log
    from r1chat.engine.local.native import Model, lib

    offload = bool(lib().llama_supports_gpu_offload())
    gpu_layers = -1 if (offload if gpu is None else gpu) else 0
    route_llama_log(log_path)
    threads = max(1, (os.cpu_count() or 2) // 2)
    t0 = time.perf_counter()
    try:
        llm = Model(
            model_path, n_ctx=256, n_batch=64, threads=threads, gpu_layers=gpu_layers, repack=repack
        )
    except Exception as e:  # (LoadFailed, or what the bindings raise)
        return SelfTest(False, offload, gpu_layers, error=f"load failed: {e}")
    load = time.perf_counter() - t0
    try:
        # the prompt in one batch (the matrix kernels), then token by token
        prompt = llm.tokenize(PROBE_TEXT, add_bos=True, special=False)
        produced = 0
        t1 = time.perf_counter()
        for _ in constrained(llm, prompt, None, Sampling(temperature=0)):
            produced += 1
            if produced >= n_tokens:
                break
        gen = time.perf_counter() - t1
    except Exception as e:
        return SelfTest(False, offload, gpu_layers, load, error=f"generation failed: {e}")
    finally:
        llm.close()
    return SelfTest(
        True, offload, gpu_layers, load, len(prompt), produced, produced / gen if gen > 0 else 0.0
    )
