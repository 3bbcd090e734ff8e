"""Write small GGUF files with the standard library and numpy (no `gguf` package at run
time): the tiny models of doctor's self-test and of the kernel probe.

Quantized tensors are random blocks in ggml's own layouts (Q4_0, Q4_1, Q8_0, Q4_K, Q5_K,
Q6_K) with small fixed scales, so llama.cpp runs the same matrix kernels on them as on a
real quantized model (repacked or not) and every weight stays finite.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

_ALIGN = 32
# GGUF metadata value types
_U32, _I32, _F32, _BOOL, _STR, _ARR = 4, 5, 6, 7, 8, 9


@dataclass(frozen=True, slots=True)
class _QType:
    ggml: int  # ggml_type
    block: int  # weights per block
    size: int  # bytes per block
    scales: tuple[tuple[int, float], ...]  # (byte offset, value) of each f16 scale


QTYPES = {
    "q4_0": _QType(2, 32, 18, ((0, 0.01),)),
    "q4_1": _QType(3, 32, 20, ((0, 0.01), (2, -0.05))),
    "q8_0": _QType(8, 32, 34, ((0, 0.0005),)),
    "q4_k": _QType(12, 256, 144, ((0, 1e-4), (2, 1e-4))),
    "q5_k": _QType(13, 256, 176, ((0, 1e-4), (2, 1e-4))),
    "q6_k": _QType(14, 256, 210, ((208, 3e-5),)),
}


@dataclass(frozen=True, slots=True)
class Quantized:
    """A (rows, cols) weight matrix of random `kind` blocks (cols a multiple of its block)."""

    kind: str
    rows: int
    cols: int
    seed: int = 0

    def data(self) -> bytes:
        q = QTYPES[self.kind]
        if self.cols % q.block:
            raise ValueError(f"{self.kind} rows need a multiple of {q.block} weights")
        n = self.rows * self.cols // q.block
        rng = np.random.default_rng(self.seed)
        blocks = rng.integers(0, 256, size=(n, q.size), dtype=np.uint8)
        for offset, value in q.scales:
            blocks[:, offset : offset + 2] = np.frombuffer(np.float16(value).tobytes(), np.uint8)
        return blocks.tobytes()


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


def write_gguf(
    path: Path, metadata: dict[str, Any], tensors: dict[str, np.ndarray | Quantized]
) -> Path:
    """A GGUF v3 file of f32 arrays and quantized matrices. numpy shapes are row-major;
    GGUF lists dims innermost first, so (rows, cols) is stored as [cols, rows]."""
    out = io.BytesIO()
    out.write(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata)))
    for key, v in metadata.items():
        vtype, raw = _value(v)
        out.write(_string(key) + struct.pack("<I", vtype) + raw)
    offset, blobs = 0, []
    for name, tensor in tensors.items():
        if isinstance(tensor, Quantized):
            dims: tuple[int, ...] = (tensor.cols, tensor.rows)
            ggml_type, blob = QTYPES[tensor.kind].ggml, tensor.data()
        else:
            data = np.ascontiguousarray(tensor, dtype="<f4")
            dims, ggml_type, blob = tuple(reversed(data.shape)), 0, data.tobytes()
        out.write(_string(name) + struct.pack("<I", len(dims)))
        out.write(struct.pack(f"<{len(dims)}Q", *dims) + struct.pack("<IQ", ggml_type, offset))
        blobs.append(blob + bytes(-len(blob) % _ALIGN))
        offset += len(blobs[-1])
    out.write(bytes(-out.tell() % _ALIGN))
    for blob in blobs:
        out.write(blob)
    path.write_bytes(out.getvalue())
    return path


LAYER_TYPES = (("q4_0", "q4_1"), ("q4_k", "q5_k"), ("q6_k", "q8_0"))
"""The quantized model's blocks: each holds two kinds of matrix, so every kind the catalog
ships (and every kind llama.cpp repacks on x86 or Arm) meets its kernels."""


def write_tiny_llama(path: Path, *, quantized: bool = False, seed: int = 0) -> Path:
    """A llama model with random weights and a byte-level vocabulary: one f32 block, or
    with `quantized` three blocks of quantized matrices (`LAYER_TYPES`) and a Q8_0
    output, as wide as K-quants and repacking need (256)."""
    if quantized:
        return write_llama(path, layers=LAYER_TYPES, n_embd=256, n_ff=512, output="q8_0", seed=seed)
    return write_llama(path, layers=(("f32", "f32"),), n_embd=64, n_ff=128, seed=seed)


def write_llama(
    path: Path,
    *,
    layers: tuple[tuple[str, str], ...],
    n_embd: int,
    n_ff: int,
    n_head: int = 4,
    output: str = "f32",
    n_ctx: int = 512,
    seed: int = 0,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """A llama model with random weights and a 262-token byte vocabulary: one block per
    `(attention kind, feed-forward kind)` in `layers` (`f32` or a key of `QTYPES`);
    `metadata` adds or replaces header keys."""
    tokens = ["<unk>", "<s>", "</s>", *(f"<0x{b:02X}>" for b in range(256)), "▁", "▁the", "▁a"]
    types = [2, 3, 3, *([6] * 256), 1, 1, 1]
    n_vocab = len(tokens)
    rng = np.random.default_rng(seed)

    def w(kind: str, rows: int, cols: int) -> np.ndarray | Quantized:
        if kind != "f32":
            return Quantized(kind, rows, cols, seed=int(rng.integers(1 << 31)))
        return rng.standard_normal((rows, cols)).astype(np.float32) * 0.05

    quantized = any(kind != "f32" for layer in layers for kind in layer)
    meta: dict[str, Any] = {
        "general.architecture": "llama",
        "general.name": "r1chat self-test",
        "llama.context_length": n_ctx,
        "llama.embedding_length": n_embd,
        "llama.block_count": len(layers),
        "llama.feed_forward_length": n_ff,
        "llama.attention.head_count": n_head,
        "llama.attention.head_count_kv": n_head,
        "llama.attention.layer_norm_rms_epsilon": 1e-5,
        "llama.rope.dimension_count": n_embd // n_head,
        "general.file_type": 7 if quantized else 0,
        "tokenizer.ggml.model": "llama",
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.scores": ("f32", [0.0] * 3 + [-1000.0] * 256 + [-1.0, -2.0, -2.0]),
        "tokenizer.ggml.token_type": ("i32", types),
        "tokenizer.ggml.unknown_token_id": 0,
        "tokenizer.ggml.bos_token_id": 1,
        "tokenizer.ggml.eos_token_id": 2,
        "tokenizer.ggml.add_bos_token": True,
        **(metadata or {}),
    }
    tensors: dict[str, np.ndarray | Quantized] = {
        "token_embd.weight": rng.standard_normal((n_vocab, n_embd)).astype(np.float32) * 0.05,
        "output_norm.weight": np.ones(n_embd, np.float32),
        "output.weight": w(output, n_vocab, n_embd),
    }
    for i, (attn, ffn) in enumerate(layers):
        tensors |= {
            f"blk.{i}.attn_norm.weight": np.ones(n_embd, np.float32),
            f"blk.{i}.attn_q.weight": w(attn, n_embd, n_embd),
            f"blk.{i}.attn_k.weight": w(attn, n_embd, n_embd),
            f"blk.{i}.attn_v.weight": w(attn, n_embd, n_embd),
            f"blk.{i}.attn_output.weight": w(attn, n_embd, n_embd),
            f"blk.{i}.ffn_norm.weight": np.ones(n_embd, np.float32),
            f"blk.{i}.ffn_gate.weight": w(ffn, n_ff, n_embd),
            f"blk.{i}.ffn_down.weight": w(ffn, n_embd, n_ff),
            f"blk.{i}.ffn_up.weight": w(ffn, n_ff, n_embd),
        }
    return write_gguf(path, meta, tensors)
