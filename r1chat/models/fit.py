"""Will a model fit this machine at a given context size, and how many layers go on the GPU?

Memory needed = weights (the GGUF's size) + KV cache + compute overhead, where the KV
cache at f16 is `2 (K and V) x layers x kv_heads x head_dim x 2 bytes` per token of
context, and the overhead (llama.cpp's compute buffers) is a flat COMPUTE_OVERHEAD.

llama.cpp offloads `layers + 1` units: each transformer block (its weights and its
slice of the KV cache) and the output layer. The weights are spread evenly over those
units (a block's share is `weights // (layers + 1)`), which is close for every distill.

Budgets: 95% of the GPUs' free memory, 85% of system RAM (the rest is for the OS and
the front end). Verdicts: fits on GPU, partial offload (N of M layers), CPU only,
won't fit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from r1chat.core.request import DEFAULT_CTX
from r1chat.core.units import human
from r1chat.models.hardware import Hardware

if TYPE_CHECKING:
    from r1chat.models.catalog import Catalog, Entry
    from r1chat.models.gguf import GGUFInfo

MiB = 1 << 20
COMPUTE_OVERHEAD = 512 * MiB
GPU_USABLE = (95, 100)  # fraction of free GPU memory
RAM_USABLE = (85, 100)  # fraction of total RAM
CPU_FRIENDLY_PARAMS = 9_000_000_000  # biggest model recommended without a GPU
CONTEXTS = (4096, DEFAULT_CTX, 16384, 32768, 65536, 131072)


KV_TYPES: dict[str, tuple[int, int]] = {"f16": (1, 1), "q8_0": (17, 32), "q4_0": (9, 32)}
"""Bytes of a KV cache element against f16's two: q8_0 packs 32 values in 34 bytes, q4_0
in 18 (ggml's block sizes)."""


class Verdict(Enum):
    GPU = "fits on GPU"
    PARTIAL = "partial offload"
    CPU = "CPU only"
    NO = "won't fit"


@dataclass(frozen=True, slots=True)
class Shape:
    """What sizing needs to know about a model."""

    weights: int  # bytes of GGUF (all split files)
    layers: int
    kv_bytes_per_token: int  # at f16

    def kv_bytes(self, n_ctx: int) -> int:
        return self.kv_bytes_per_token * n_ctx

    def with_kv(self, kv_type: str) -> Shape:
        """The shape with its KV cache stored as `kv_type` (a key of `KV_TYPES`)."""
        num, den = KV_TYPES[kv_type]
        return Shape(self.weights, self.layers, self.kv_bytes_per_token * num // den)

    @classmethod
    def from_entry(cls, entry: Entry) -> Shape:
        return cls(entry.size, entry.layers, entry.kv_bytes_per_token)

    @classmethod
    def from_gguf(cls, path: str | Path, info: GGUFInfo | None = None) -> Shape:
        """The shape of the GGUF at `path` (`info`: its header, if already read)."""
        if info is None:
            from r1chat.models.headers import header

            info = header(Path(path))
        layers, kv_heads, k_len, v_len = kv_shape(info)
        per_token = layers * kv_heads * (k_len + v_len) * 2
        return cls(split_total_size(Path(path), info.metadata), layers, per_token)


def kv_shape(info: GGUFInfo) -> tuple[int, int, int, int]:
    """(layers, KV heads, key length, value length) from a GGUF header."""
    kv_heads = _max_int(info.arch_key("attention.head_count_kv"))
    heads = _max_int(info.arch_key("attention.head_count"))
    kv_heads = kv_heads or heads
    embd = _max_int(info.arch_key("embedding_length"))
    k_len = _max_int(info.arch_key("attention.key_length")) or (embd // heads if heads else 0)
    v_len = _max_int(info.arch_key("attention.value_length")) or k_len
    return info.block_count, kv_heads, k_len, v_len


def _max_int(value: Any) -> int:
    if isinstance(value, list):  # per-layer values (some architectures)
        return max((int(v) for v in value), default=0)
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


_SPLIT = re.compile(r"^(?P<stem>.*)-(?P<i>\d{5})-of-(?P<n>\d{5})\.gguf$", re.IGNORECASE)


def split_files(path: Path) -> list[Path]:
    """All shards of a split GGUF given any one of them (just `path` if not split)."""
    m = _SPLIT.match(path.name)
    if not m:
        return [path]
    n = int(m["n"])
    return [path.with_name(f"{m['stem']}-{i:05d}-of-{n:05d}.gguf") for i in range(1, n + 1)]


def split_total_size(path: Path, metadata: dict[str, Any] | None = None) -> int:
    shards = split_files(path)
    if len(shards) == 1 and not (metadata or {}).get("split.count", 0) > 1:
        return path.stat().st_size
    return sum(p.stat().st_size for p in shards if p.exists())


@dataclass(frozen=True, slots=True)
class Fit:
    verdict: Verdict
    gpu_layers: int  # for llama.cpp's n_gpu_layers: -1 all, N, or 0
    units: int  # offloadable layers: blocks + the output layer
    need: int  # bytes: weights + KV cache + overhead
    kv: int  # bytes of KV cache
    gpu_bytes: int = 0
    cpu_bytes: int = 0
    gpu_unknown: bool = False  # offload-capable, but GPU memory could not be read

    @property
    def label(self) -> str:
        if self.verdict is Verdict.PARTIAL:
            return f"partial offload ({self.gpu_layers} of {self.units} layers)"
        return self.verdict.value + (" (GPU memory unknown)" if self.gpu_unknown else "")

    @property
    def short(self) -> str:
        """For tables: GPU, GPU 19/29, CPU, no."""
        return {Verdict.GPU: "GPU", Verdict.CPU: "CPU", Verdict.NO: "won't fit"}.get(
            self.verdict, f"GPU {self.gpu_layers}/{self.units}"
        )

    @property
    def runs(self) -> bool:
        return self.verdict is not Verdict.NO


def memory_needed(shape: Shape, n_ctx: int) -> int:
    """Bytes to run `shape` with `n_ctx` tokens of context."""
    return shape.weights + shape.kv_bytes(n_ctx) + COMPUTE_OVERHEAD


def gpu_budget(hw: Hardware) -> int:
    return hw.vram_free * GPU_USABLE[0] // GPU_USABLE[1] if hw.offload else 0


def ram_budget(hw: Hardware) -> int:
    return hw.ram_total * RAM_USABLE[0] // RAM_USABLE[1]


def plan(shape: Shape, n_ctx: int, hw: Hardware) -> Fit:
    """Where `shape` runs on `hw` at `n_ctx`: all on GPU, N layers on GPU, CPU, or not."""
    kv = shape.kv_bytes(n_ctx)
    need = memory_needed(shape, n_ctx)
    units = shape.layers + 1
    ram = ram_budget(hw)
    gpu = gpu_budget(hw)
    if gpu > 0:
        if need <= gpu:
            return Fit(Verdict.GPU, -1, units, need, kv, gpu_bytes=need)
        per_block = shape.weights // units + (kv // shape.layers if shape.layers else 0)
        n = max(0, min(shape.layers, (gpu - COMPUTE_OVERHEAD) // per_block)) if per_block else 0
        if n > 0:
            on_gpu = n * per_block
            # unified memory: GPU and CPU parts come out of the same RAM
            cpu_part = need if hw.unified else need - on_gpu
            if cpu_part <= ram:
                return Fit(
                    Verdict.PARTIAL,
                    n,
                    units,
                    need,
                    kv,
                    gpu_bytes=on_gpu + COMPUTE_OVERHEAD,
                    cpu_bytes=need - on_gpu,
                )
            return Fit(Verdict.NO, 0, units, need, kv)
    unknown = hw.offload and not hw.gpu_known
    if need <= ram:
        return Fit(Verdict.CPU, 0, units, need, kv, cpu_bytes=need, gpu_unknown=unknown)
    return Fit(Verdict.NO, 0, units, need, kv, gpu_unknown=unknown)


MOST_SLOTS = 4
"""The most replies `serve` runs at once unless told (as LM Studio's default)."""


def slots_that_fit(shape: Shape, n_ctx: int, hw: Hardware, most: int = MOST_SLOTS) -> int:
    """How many sequences of `n_ctx` context (each with its KV cache) run as well as one
    does: on the GPU if one does, in RAM otherwise (at least 1, at most `most`)."""
    one = plan(shape, n_ctx, hw)
    for n in range(most, 1, -1):
        fit = plan(shape, n_ctx * n, hw)
        if fit.runs and (fit.verdict, fit.gpu_layers) == (one.verdict, one.gpu_layers):
            return n
    return 1


def context_problem(shape: Shape, n_ctx: int, hw: Hardware, trained: int = 0) -> str | None:
    """Why `n_ctx` cannot run on `hw` at all (more than its RAM and GPU memory together),
    said before llama.cpp tries to allocate it; None when it may."""
    need = memory_needed(shape, n_ctx)
    have = hw.ram_total + (hw.vram_total if hw.offload else 0)
    if need <= have:
        return None
    where = f"{human(hw.ram_total)} of RAM" + (
        f" and {human(hw.vram_total)} of GPU memory" if hw.offload and hw.vram_total else ""
    )
    hint = f" (the model supports up to {trained:,})" if trained else ""
    return (
        f"--ctx {n_ctx:,} needs {human(need)} (the KV cache alone {human(shape.kv_bytes(n_ctx))})"
        f" but this machine has {where}; use a smaller --ctx{hint}"
    )


def plan_file(
    path: str | Path, n_ctx: int, hw: Hardware, kv_type: str = "f16"
) -> tuple[Fit | None, int]:
    """The fit of a GGUF on disk (an imported model) and its weight bytes; None if unreadable."""
    from r1chat.core.errors import R1ChatError

    try:
        shape = Shape.from_gguf(Path(path))
    except (R1ChatError, OSError):
        return None, 0
    return plan(shape.with_kv(kv_type), n_ctx, hw), shape.weights


def plan_entry(entry: Entry, n_ctx: int, hw: Hardware, kv_type: str = "f16") -> Fit | None:
    """`plan` for a catalog entry (None for remote-only models)."""
    if entry.remote or not entry.layers:
        return None
    return plan(Shape.from_entry(entry).with_kv(kv_type), n_ctx, hw)


def max_context(shape: Shape, hw: Hardware, limit: int, *, on_gpu: bool) -> int:
    """The most context (a multiple of 256, at most `limit`) that fits entirely on the
    GPU (`on_gpu`) or at all; 0 when none does."""

    def ok(n: int) -> bool:
        fit = plan(shape, n, hw)
        return fit.verdict is Verdict.GPU if on_gpu else fit.runs

    lo, hi = 0, limit // 256
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid * 256):
            lo = mid
        else:
            hi = mid - 1
    return lo * 256


def auto_gpu_layers(shape: Shape, n_ctx: int, hw: Hardware) -> int:
    """n_gpu_layers for llama.cpp: -1 (all) when the model fits, else as many as fit.

    For a llama.cpp build that can offload (the caller checks), on `hw` as llama.cpp sees
    it (`launch.machine.deep_hardware`). Returns -1 when GPU memory cannot be found at all
    (let llama.cpp try), 0 when not even one layer fits.
    """
    if hw.backend == "CPU":  # the caller knows offload works; the library scan missed it
        hw = Hardware(hw.ram_total, hw.ram_available, hw.cores, hw.gpus, "GPU")
    if not hw.gpus:
        return -1
    fit = plan(shape, n_ctx, hw)
    return fit.gpu_layers if fit.verdict in (Verdict.GPU, Verdict.PARTIAL) else 0


def recommend(catalog: Catalog, hw: Hardware, n_ctx: int = DEFAULT_CTX) -> tuple[Entry, Fit] | None:
    """The model to suggest for this machine (default quantizations only).

    The biggest that fits entirely on the GPU; else the biggest with at least half its
    layers on the GPU; else, on the CPU, the biggest up to ~8B parameters that fits in
    RAM (bigger ones are too slow there); else the smallest that fits at all.
    """
    fits = [(e, f) for e in catalog.models() if (f := plan_entry(e, n_ctx, hw)) and f.runs]
    if not fits:
        return None

    def biggest(items: list[tuple[Entry, Fit]]) -> tuple[Entry, Fit] | None:
        return max(items, key=lambda x: (x[0].params, x[0].size)) if items else None

    return (
        biggest([x for x in fits if x[1].verdict is Verdict.GPU])
        or biggest(
            [
                x
                for x in fits
                if x[1].verdict is Verdict.PARTIAL and 2 * x[1].gpu_layers >= x[1].units
            ]
        )
        or biggest([x for x in fits if x[0].params <= CPU_FRIENDLY_PARAMS])
        or min(fits, key=lambda x: x[0].size)
    )
