"""Hardware detection: RAM, GPUs (NVML, nvidia-smi, Apple), the llama.cpp backend."""

from __future__ import annotations

import os
import stat
import sys
import types
from pathlib import Path

import pytest

from r1chat.models import hardware
from r1chat.models.hardware import GiB, Gpu, Hardware


def test_cores_and_ram_are_positive() -> None:
    assert hardware.physical_cores() >= 1
    total, available = hardware.ram()
    assert total > 256 << 20 and 0 < available <= total


def test_detect_on_this_machine() -> None:
    hw = hardware.detect()
    assert isinstance(hw, Hardware) and hw.ram_total > 0 and hw.cores >= 1
    assert hw.backend in (
        "CPU",
        "CUDA",
        "ROCm",
        "Metal",
        "Vulkan",
        "SYCL",
        "OpenCL",
        "MUSA",
        "CANN",
    )


def test_parse_nvidia_smi() -> None:
    gpus = hardware.parse_nvidia_smi(
        "NVIDIA GeForce RTX 4090, 24564, 23012\nNVIDIA A100-SXM4-80GB, 81920, 81000\n"
    )
    assert gpus == [
        Gpu("NVIDIA GeForce RTX 4090", 24564 << 20, 23012 << 20, "NVIDIA"),
        Gpu("NVIDIA A100-SXM4-80GB", 81920 << 20, 81000 << 20, "NVIDIA"),
    ]
    assert hardware.parse_nvidia_smi("No devices were found\n") == []


def test_nvidia_smi_is_used_when_nvml_is_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'NVIDIA L4, 23034, 22000'\n")
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    assert hardware.gpus() == [Gpu("NVIDIA L4", 23034 << 20, 22000 << 20, "NVIDIA")]


def test_nvml_is_preferred(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("pynvml")
    mem = types.SimpleNamespace(total=16 * GiB, free=15 * GiB)
    fake.nvmlInit = lambda: None  # type: ignore[attr-defined]
    fake.nvmlShutdown = lambda: None  # type: ignore[attr-defined]
    fake.nvmlDeviceGetCount = lambda: 1  # type: ignore[attr-defined]
    fake.nvmlDeviceGetHandleByIndex = lambda i: i  # type: ignore[attr-defined]
    fake.nvmlDeviceGetMemoryInfo = lambda h: mem  # type: ignore[attr-defined]
    fake.nvmlDeviceGetName = lambda h: b"NVIDIA RTX A4000"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert hardware.gpus() == [Gpu("NVIDIA RTX A4000", 16 * GiB, 15 * GiB, "NVIDIA")]


def test_nvml_without_a_driver_falls_through(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("pynvml")

    def no_driver() -> None:
        raise RuntimeError("NVML Shared Library Not Found")

    fake.nvmlInit = no_driver  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setenv("PATH", "")
    assert hardware._nvml_gpus() is None
    assert hardware._nvidia_smi_gpus() is None


def test_apple_unified_memory_budget() -> None:
    assert hardware.apple_gpu_budget(16 * GiB) == 16 * GiB * 2 // 3
    assert hardware.apple_gpu_budget(64 * GiB) == 48 * GiB


def test_backend_from_library_names() -> None:
    assert hardware.backend_from_libs(["libggml-base.so", "libggml-cpu.so", "libllama.so"]) == "CPU"
    assert hardware.backend_from_libs(["libggml-cuda.so", "libggml-cpu.so"]) == "CUDA"
    assert hardware.backend_from_libs(["libggml-metal.dylib", "libggml-blas.dylib"]) == "Metal"
    assert hardware.backend_from_libs(["ggml-vulkan.dll"]) == "Vulkan"
    assert hardware.backend_from_libs(["libggml-hip.so"]) == "ROCm"


def test_backend_of_the_installed_build_without_importing_llama_cpp() -> None:
    import subprocess

    code = (
        "import sys; from r1chat.models import hardware; b = hardware.llama_backend(); "
        "print(b, 'llama_cpp' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    backend, imported = out.stdout.split()
    assert imported == "False"
    import llama_cpp

    assert (backend != "CPU") == bool(llama_cpp.llama_supports_gpu_offload())


def test_hardware_properties() -> None:
    hw = Hardware(
        32 * GiB, 30 * GiB, 8, (Gpu("a", 8 * GiB, 6 * GiB), Gpu("b", 8 * GiB, 7 * GiB)), "CUDA"
    )
    assert hw.offload and hw.vram_total == 16 * GiB and hw.vram_free == 13 * GiB
    assert not hw.unified and hw.gpu_known
    assert not Hardware(1, 1, 1).offload
