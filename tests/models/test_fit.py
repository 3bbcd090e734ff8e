"""Sizing against hand-worked numbers (r1:7b and r1:14b at Q4_K_M), verdicts, auto layers.

The arithmetic, spelled out once (COMPUTE_OVERHEAD = 512 MiB = 536,870,912 bytes):

r1:7b  weights W = 4,683,075,271; 28 layers; KV/token = 2*28*4*128*2 = 57,344 bytes
  ctx 8192: KV = 469,762,048; need = W + KV + overhead = 5,689,708,231
  8 GiB GPU: budget = 8,589,934,592 * 95 // 100 = 8,160,437,862 >= need -> fits on GPU
  4 GiB GPU: budget = 4,080,218,931 < need.  A block = W // 29 + KV // 28
             = 161,485,354 + 16,777,216 = 178,262,570; blocks that fit
             = (4,080,218,931 - 536,870,912) // 178,262,570 = 19 -> partial, 19 of 29
             (GPU part 19 * 178,262,570 + overhead = 3,923,859,742;
              CPU part 5,689,708,231 - 3,386,988,830 = 2,302,719,401)
  no GPU, 8 GiB RAM: budget 8,589,934,592 * 85 // 100 = 7,301,444,403 >= need -> CPU only
  no GPU, 4 GiB RAM: budget 3,650,722,201 < need -> won't fit

r1:14b W = 8,988,112,040; 48 layers; KV/token = 2*48*8*128*2 = 196,608 bytes
  ctx 32768: KV = 6,442,450,944; need = 15,967,433,896
  24 GiB GPU: budget 24,481,313,587 -> fits on GPU
  12 GiB GPU: budget 12,240,656,793; block = W // 49 + KV // 48 = 183,430,857 + 134,217,728
              = 317,648,585; (12,240,656,793 - 536,870,912) // 317,648,585 = 36 -> 36 of 49
  ctx 8192 on the 12 GiB GPU: KV = 1,610,612,736; need = 11,135,595,688 -> fits on GPU
  Apple 16 GiB unified, ctx 8192: GPU limit 2/3 * 17,179,869,184 = 11,453,246,122,
              budget * 95 // 100 = 10,880,583,815 < need; block = 183,430,857 + 33,554,432
              = 216,985,289; (10,880,583,815 - 536,870,912) // 216,985,289 = 47 -> 47 of 49
"""

from __future__ import annotations

from pathlib import Path

import pytest

from r1chat.models.catalog import load_catalog
from r1chat.models.fit import (
    COMPUTE_OVERHEAD,
    Shape,
    Verdict,
    auto_gpu_layers,
    max_context,
    memory_needed,
    plan,
    plan_entry,
    recommend,
    slots_that_fit,
)
from r1chat.models.hardware import Gpu, Hardware, apple_gpu_budget

GiB = 1 << 30


def machine(ram_gib: float, vram_gib: float | None = None, backend: str = "CUDA") -> Hardware:
    gpus = (
        ()
        if vram_gib is None
        else (Gpu("Test GPU", int(vram_gib * GiB), int(vram_gib * GiB), "NVIDIA"),)
    )
    return Hardware(
        int(ram_gib * GiB), int(ram_gib * GiB), 8, gpus, backend if vram_gib is not None else "CPU"
    )


def apple(ram_gib: int) -> Hardware:
    total = ram_gib * GiB
    return Hardware(
        total,
        total,
        8,
        (Gpu("M2", total, apple_gpu_budget(total), "Apple", unified=True),),
        "Metal",
    )


@pytest.fixture(scope="module")
def r7b() -> Shape:
    return Shape.from_entry(load_catalog().require("r1:7b"))


@pytest.fixture(scope="module")
def r14b() -> Shape:
    return Shape.from_entry(load_catalog().require("r1:14b"))


def test_overhead_constant() -> None:
    assert COMPUTE_OVERHEAD == 536_870_912


def test_r1_7b_hand_worked(r7b: Shape) -> None:
    assert r7b.kv_bytes_per_token == 57_344
    assert r7b.kv_bytes(8192) == 469_762_048
    assert memory_needed(r7b, 8192) == 5_689_708_231

    on_8g = plan(r7b, 8192, machine(16, 8))
    assert (on_8g.verdict, on_8g.gpu_layers, on_8g.label) == (Verdict.GPU, -1, "fits on GPU")
    assert on_8g.need == 5_689_708_231

    on_4g = plan(r7b, 8192, machine(16, 4))
    assert on_4g.verdict is Verdict.PARTIAL and on_4g.gpu_layers == 19 and on_4g.units == 29
    assert on_4g.label == "partial offload (19 of 29 layers)"
    assert on_4g.gpu_bytes == 3_923_859_742 and on_4g.cpu_bytes == 2_302_719_401

    cpu = plan(r7b, 8192, machine(8))
    assert (cpu.verdict, cpu.gpu_layers, cpu.label) == (Verdict.CPU, 0, "CPU only")
    assert plan(r7b, 8192, machine(4)).label == "won't fit"


def test_kv_cache_types_hand_worked(r7b: Shape) -> None:
    """q8_0 keeps 32 values in 34 bytes, q4_0 in 18, against f16's 64."""
    q8, q4 = r7b.with_kv("q8_0"), r7b.with_kv("q4_0")
    assert (q8.kv_bytes_per_token, q4.kv_bytes_per_token) == (30_464, 16_128)  # x 34/64, 18/64
    assert q8.kv_bytes(8192) == 249_561_088 and q4.kv_bytes(8192) == 132_120_576
    assert memory_needed(q8, 8192) == 5_689_708_231 - 469_762_048 + 249_561_088
    assert r7b.with_kv("f16") == r7b
    # 8 GiB of VRAM, 95% usable: 8,160,437,862 bytes; weights 4,683,075,271 + 512 MiB leave
    # 2,940,491,679 for the cache: 51,278 tokens at f16 -> 51,200 (a multiple of 256)
    box = machine(64, 8)
    assert max_context(r7b, box, 131072, on_gpu=True) == 51_200
    # ... 96,523 at q8_0 -> 96,512; q4_0 reaches the model's 131,072
    assert max_context(q8, box, 131072, on_gpu=True) == 96_512
    assert max_context(q4, box, 131072, on_gpu=True) == 131_072
    assert max_context(r7b, machine(4), 131072, on_gpu=False) == 0  # does not run at all


def test_r1_14b_hand_worked(r14b: Shape) -> None:
    assert r14b.kv_bytes_per_token == 196_608
    assert r14b.kv_bytes(32768) == 6_442_450_944
    assert memory_needed(r14b, 32768) == 15_967_433_896
    assert plan(r14b, 32768, machine(32, 24)).verdict is Verdict.GPU
    fit = plan(r14b, 32768, machine(32, 12))
    assert fit.label == "partial offload (36 of 49 layers)"
    assert plan(r14b, 8192, machine(32, 12)).verdict is Verdict.GPU
    assert memory_needed(r14b, 8192) == 11_135_595_688
    assert plan(r14b, 8192, apple(16)).label == "partial offload (47 of 49 layers)"


def test_partial_offload_that_leaves_too_much_for_ram_wont_fit(r14b: Shape) -> None:
    assert plan(r14b, 32768, machine(4, 12)).verdict is Verdict.NO


def test_a_cpu_only_build_ignores_the_gpu(r7b: Shape) -> None:
    hw = Hardware(16 * GiB, 16 * GiB, 8, (Gpu("RTX", 24 * GiB, 24 * GiB, "NVIDIA"),), "CPU")
    assert plan(r7b, 8192, hw).verdict is Verdict.CPU


def test_unknown_gpu_memory_is_said(r7b: Shape) -> None:
    hw = Hardware(16 * GiB, 16 * GiB, 8, (), "Vulkan")
    assert plan(r7b, 8192, hw).label == "CPU only (GPU memory unknown)"


def test_remote_entries_are_not_sized() -> None:
    assert plan_entry(load_catalog().require("r1:671b"), 8192, machine(64, 80)) is None


def test_recommendation() -> None:
    cat = load_catalog()
    best = recommend(cat, machine(64, 24))
    assert best and best[0].name == "r1:32b" and best[1].verdict is Verdict.GPU
    best = recommend(cat, machine(32, 8))
    assert best and best[0].name == "r1:8b-0528"
    best = recommend(cat, machine(64))  # CPU only: not the 32B that fits but crawls
    assert best and best[0].name == "r1:8b-0528" and best[1].verdict is Verdict.CPU
    best = recommend(cat, machine(4))
    assert best and best[0].name == "r1:1.5b"
    assert recommend(cat, machine(1)) is None


# -- from a GGUF header ------------------------------------------------------------------


def write_header(
    path: Path,
    *,
    arch: str,
    layers: int,
    heads: int,
    kv_heads: int,
    embd: int,
    size: int,
    extra: dict[str, int] | None = None,
) -> Path:
    """A GGUF with only metadata, padded (sparse) to `size` bytes like a real model."""
    import gguf

    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(layers)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_embedding_length(embd)
    w.add_context_length(131072)
    for key, value in (extra or {}).items():
        w.add_uint16(key, value)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with path.open("r+b") as f:
        f.truncate(size)
    return path


def test_auto_gpu_layers_from_the_gguf_header(tmp_path: Path) -> None:
    path = write_header(
        tmp_path / "r7b.gguf",
        arch="qwen2",
        layers=28,
        heads=28,
        kv_heads=4,
        embd=3584,
        size=4_683_075_271,
    )
    shape = Shape.from_gguf(path)
    assert shape == Shape(4_683_075_271, 28, 57_344)
    assert auto_gpu_layers(shape, 8192, hw=machine(16, 8)) == -1
    assert auto_gpu_layers(shape, 8192, hw=machine(16, 4)) == 19
    assert auto_gpu_layers(shape, 8192, hw=machine(16, 0.25)) == 0  # not even one layer
    assert auto_gpu_layers(shape, 8192, hw=machine(16, None)) == -1  # unknown: let llama.cpp try


def test_split_ggufs_count_every_shard(tmp_path: Path) -> None:
    first = write_header(
        tmp_path / "m-00001-of-00002.gguf",
        arch="llama",
        layers=80,
        heads=64,
        kv_heads=8,
        embd=8192,
        size=30_000_000_000,
        extra={"split.count": 2},
    )
    with (tmp_path / "m-00002-of-00002.gguf").open("wb") as f:
        f.truncate(12_520_000_000)
    shape = Shape.from_gguf(first)
    assert shape.weights == 42_520_000_000 and shape.kv_bytes_per_token == 327_680


def test_slots_that_fit_keep_the_single_reply_s_placement() -> None:
    shape = Shape.from_entry(load_catalog().require("r1:7b"))
    assert slots_that_fit(shape, 8192, machine(64)) == 4  # plenty of RAM: the most
    small = machine(12)  # in RAM: as many caches as fit beside the weights
    n = slots_that_fit(shape, 65536, small)
    assert 1 <= n < 4 and plan(shape, 65536 * n, small).runs
    assert not plan(shape, 65536 * (n + 1), small).runs
    # on a GPU: only as many as keep everything on it
    gpu = machine(64, 6.2)
    assert slots_that_fit(shape, 8192, gpu) == 2
    assert plan(shape, 8192 * 2, gpu).verdict is Verdict.GPU
    assert plan(shape, 8192 * 3, gpu).verdict is Verdict.PARTIAL  # layers would leave it
    # partly on a GPU: as many as keep as many layers there
    assert slots_that_fit(shape, 8192, machine(64, 5.5)) == 1
