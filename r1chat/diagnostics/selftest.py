"""`r1chat doctor`'s self-test: write a tiny GGUF and run it through llama.cpp.

The model is a 1-layer llama with random weights and a 262-token SentencePiece-style
vocabulary (the 256 byte tokens and a few specials). It is written with the standard
library and numpy only (the `gguf` package is a test dependency, not a runtime one), is
about 400 kB, loads in milliseconds, and exercises the real load, offload, prompt
evaluation and sampling path, on the GPU when this llama.cpp build can offload.
"""

from __future__ import annotations

import contextlib
import io
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

_ALIGN = 32
# GGUF metadata value types
_U32, _I32, _F32, _BOOL, _STR, _ARR = 4, 5, 6, 7, 8, 9


def _string(s: str) -> bytes:
    raw = s.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def _value(v: Any) -> tuple[int, bytes]:
    if isinstance(v, bool):
        return _BOOL, struct.pack("<?", v)
    if isinstance(v, int):
        return _U32, struct.pack("<I", v)
    if isinstance(v, float):
        return _F32, struct.pack("<f", v)
    if isinstance(v, str):
        return _STR, _string(v)
    if isinstance(v, tuple) and v and v[0] == "i32":  # ("i32", [...]) / ("f32", [...])
        return _ARR, struct.pack("<IQ", _I32, len(v[1])) + np.asarray(v[1], "<i4").tobytes()
    if isinstance(v, tuple) and v and v[0] == "f32":
        return _ARR, struct.pack("<IQ", _F32, len(v[1])) + np.asarray(v[1], "<f4").tobytes()
    if isinstance(v, list):
        return _ARR, struct.pack("<IQ", _STR, len(v)) + b"".join(_string(s) for s in v)
    raise TypeError(f"cannot write {type(v).__name__} to GGUF")


def write_gguf(path: Path, metadata: dict[str, Any], tensors: dict[str, np.ndarray]) -> Path:
    """A GGUF v3 file of f32 tensors. numpy shapes are row-major; GGUF lists dims
    innermost first, so an array of shape (rows, cols) is stored as [cols, rows]."""
    out = io.BytesIO()
    out.write(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata)))
    for key, v in metadata.items():
        vtype, raw = _value(v)
        out.write(_string(key) + struct.pack("<I", vtype) + raw)
    offset, blobs = 0, []
    for name, arr in tensors.items():
        data = np.ascontiguousarray(arr, dtype="<f4")
        dims = tuple(reversed(data.shape))
        out.write(_string(name) + struct.pack("<I", len(dims)))
        out.write(struct.pack(f"<{len(dims)}Q", *dims) + struct.pack("<IQ", 0, offset))
        blob = data.tobytes()
        blobs.append(blob + bytes(-len(blob) % _ALIGN))
        offset += len(blobs[-1])
    out.write(bytes(-out.tell() % _ALIGN))
    for blob in blobs:
        out.write(blob)
    path.write_bytes(out.getvalue())
    return path


def write_tiny_llama(
    path: Path,
    *,
    n_embd: int = 64,
    n_ff: int = 128,
    n_head: int = 4,
    n_ctx: int = 512,
    seed: int = 0,
) -> Path:
    """A 1-layer llama model with random weights and a byte-level vocabulary."""
    tokens = ["<unk>", "<s>", "</s>", *(f"<0x{b:02X}>" for b in range(256)), "▁", "▁the", "▁a"]
    types = [2, 3, 3, *([6] * 256), 1, 1, 1]
    n_vocab = len(tokens)
    rng = np.random.default_rng(seed)

    def w(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32) * 0.05

    meta: dict[str, Any] = {
        "general.architecture": "llama",
        "general.name": "r1chat self-test",
        "llama.context_length": n_ctx,
        "llama.embedding_length": n_embd,
        "llama.block_count": 1,
        "llama.feed_forward_length": n_ff,
        "llama.attention.head_count": n_head,
        "llama.attention.head_count_kv": n_head,
        "llama.attention.layer_norm_rms_epsilon": 1e-5,
        "llama.rope.dimension_count": n_embd // n_head,
        "general.file_type": 0,
        "tokenizer.ggml.model": "llama",
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.scores": ("f32", [0.0] * 3 + [-1000.0] * 256 + [-1.0, -2.0, -2.0]),
        "tokenizer.ggml.token_type": ("i32", types),
        "tokenizer.ggml.unknown_token_id": 0,
        "tokenizer.ggml.bos_token_id": 1,
        "tokenizer.ggml.eos_token_id": 2,
        "tokenizer.ggml.add_bos_token": True,
    }
    tensors = {
        "token_embd.weight": w(n_vocab, n_embd),
        "output_norm.weight": np.ones(n_embd, np.float32),
        "output.weight": w(n_vocab, n_embd),
        "blk.0.attn_norm.weight": np.ones(n_embd, np.float32),
        "blk.0.attn_q.weight": w(n_embd, n_embd),
        "blk.0.attn_k.weight": w(n_embd, n_embd),
        "blk.0.attn_v.weight": w(n_embd, n_embd),
        "blk.0.attn_output.weight": w(n_embd, n_embd),
        "blk.0.ffn_norm.weight": np.ones(n_embd, np.float32),
        "blk.0.ffn_gate.weight": w(n_ff, n_embd),
        "blk.0.ffn_down.weight": w(n_embd, n_ff),
        "blk.0.ffn_up.weight": w(n_ff, n_embd),
    }
    return write_gguf(path, meta, tensors)


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


def run_self_test(*, n_tokens: int = 64, gpu: bool | None = None) -> SelfTest:
    """Write the tiny model to a temp dir, load it (offloaded if possible), generate."""
    import llama_cpp

    from r1chat.config import paths

    offload = bool(llama_cpp.llama_supports_gpu_offload())
    gpu_layers = -1 if (offload if gpu is None else gpu) else 0
    log = _route_log(paths.llama_log_file())
    with tempfile.TemporaryDirectory(prefix="r1chat-selftest-") as tmp:
        model_path = write_tiny_llama(Path(tmp) / "tiny.gguf")
        t0 = time.perf_counter()
        try:
            with contextlib.redirect_stderr(log), contextlib.redirect_stdout(log):
                llm = llama_cpp.Llama(
                    model_path=str(model_path),
                    n_ctx=256,
                    n_batch=64,
                    n_gpu_layers=gpu_layers,
                    seed=1,
                    verbose=False,
                )
        except Exception as e:  # llama.cpp reports failures as ValueError/RuntimeError
            return SelfTest(False, offload, gpu_layers, error=f"load failed: {e}")
        load = time.perf_counter() - t0
        try:
            prompt = llm.tokenize(b"r1chat self-test", add_bos=True)
            produced = 0
            t1 = time.perf_counter()
            for _ in llm.generate(prompt, top_k=1, top_p=1.0, temp=0.0, reset=True):
                produced += 1
                if produced >= n_tokens:
                    break
            gen = time.perf_counter() - t1
        except Exception as e:
            return SelfTest(False, offload, gpu_layers, load, error=f"generation failed: {e}")
        finally:
            with contextlib.redirect_stderr(log), contextlib.redirect_stdout(log):
                llm.close() if hasattr(llm, "close") else None
                del llm
    return SelfTest(
        True, offload, gpu_layers, load, len(prompt), produced, produced / gen if gen > 0 else 0.0
    )


def _route_log(path: Path) -> Any:
    """llama.cpp's log into the log file (the engine's helper), never onto the terminal."""
    try:
        from r1chat.engine.local.llama_log import route_llama_log
    except ImportError:  # pragma: no cover
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("a", encoding="utf-8")
    return route_llama_log(path)
