"""What this machine has: CPU cores, RAM, GPU memory, and what this llama.cpp build can use.

Everything here is cheap enough for `r1chat models` (a few milliseconds): llama_cpp is
never imported on the fast path. The llama.cpp backend is read from the shared libraries
installed with llama-cpp-python (`libggml-cuda.so`, `libggml-metal.dylib`, ...); GPU
memory comes from NVML (`nvidia-ml-py`, optional), else `nvidia-smi`, else Apple
Silicon's unified memory. What llama.cpp itself says (its devices, whether it can offload)
is asked under `engine.local.build`, the only place that loads it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

GiB = 1 << 30

# libggml-<name> files in llama_cpp/lib, in order of preference, and what to call them.
_BACKEND_LIBS = (
    ("cuda", "CUDA"),
    ("hip", "ROCm"),
    ("metal", "Metal"),
    ("vulkan", "Vulkan"),
    ("sycl", "SYCL"),
    ("opencl", "OpenCL"),
    ("musa", "MUSA"),
    ("cann", "CANN"),
)


@dataclass(frozen=True, slots=True)
class Gpu:
    name: str
    total: int  # bytes
    free: int  # bytes now free (for unified memory: the GPU's working-set limit)
    vendor: str = ""  # "NVIDIA", "Apple", or what llama.cpp calls the device
    unified: bool = False  # shares system RAM (Apple Silicon)


@dataclass(frozen=True, slots=True)
class Hardware:
    ram_total: int
    ram_available: int
    cores: int
    gpus: tuple[Gpu, ...] = ()
    backend: str = "CPU"  # the llama.cpp build's GPU backend, or "CPU"

    @property
    def offload(self) -> bool:
        """This llama.cpp build can put layers on a GPU."""
        return self.backend != "CPU"

    @property
    def vram_total(self) -> int:
        return sum(g.total for g in self.gpus)

    @property
    def vram_free(self) -> int:
        return sum(g.free for g in self.gpus)

    @property
    def unified(self) -> bool:
        return any(g.unified for g in self.gpus)

    @property
    def gpu_known(self) -> bool:
        """GPU memory is known (if False with offload, sizing can only guess)."""
        return bool(self.gpus)

    def to_dict(self) -> dict[str, Any]:
        """For `--json` output (`models`, `doctor`)."""
        return {
            "cores": self.cores,
            "ram_total": self.ram_total,
            "ram_available": self.ram_available,
            "backend": self.backend,
            "offload": self.offload,
            "gpus": [
                {"name": g.name, "total": g.total, "free": g.free, "unified": g.unified}
                for g in self.gpus
            ],
        }


def physical_cores() -> int:
    """Physical CPU cores (llama.cpp runs best with one thread per core)."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
                cores, phys, core = set(), None, None
                for line in f:
                    key, _, value = line.partition(":")
                    key = key.strip()
                    if key == "physical id":
                        phys = value.strip()
                    elif key == "core id":
                        core = value.strip()
                    elif not line.strip() and core is not None:
                        cores.add((phys, core))
                        phys = core = None
                if core is not None:
                    cores.add((phys, core))
            if cores:
                return len(cores)
        except OSError:
            pass
    elif sys.platform == "darwin":
        try:
            out = subprocess.run(
                ["sysctl", "-n", "hw.physicalcpu"], capture_output=True, text=True, timeout=2
            )
            return max(1, int(out.stdout.strip()))
        except (OSError, ValueError, subprocess.SubprocessError):
            pass
    return max(1, os.cpu_count() or 1)


def cpu_identity() -> str:
    """The CPU's model and the instruction sets it advertises (one string: what a kernel
    probe's result holds for)."""
    if sys.platform.startswith("linux"):
        with (
            contextlib.suppress(OSError),
            open("/proc/cpuinfo", encoding="ascii", errors="replace") as f,
        ):
            seen: dict[str, str] = {}
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "flags", "Features", "CPU part") and key not in seen:
                    seen[key] = " ".join(value.split())
                if not line.strip() and seen:
                    break
            if seen:
                return f"{platform.machine()}; " + "; ".join(seen.values())
    elif sys.platform == "darwin":
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True,
                text=True,
                timeout=2,
            )
            return f"{platform.machine()}; {out.stdout.strip()}"
    return f"{platform.machine()}; {platform.processor()}"


# -- RAM -------------------------------------------------------------------------------


def _meminfo() -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if parts and parts[0].isdigit():
                    out[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    except OSError:
        pass
    return out


def _sysctl_int(name: str) -> int:
    try:
        out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=2)
        return int(out.stdout.strip())
    except (OSError, ValueError, subprocess.SubprocessError):
        return 0


class _MemStatus(ctypes.Structure):
    _fields_ = [
        ("dwLength", ctypes.c_ulong),
        ("dwMemoryLoad", ctypes.c_ulong),
        ("ullTotalPhys", ctypes.c_ulonglong),
        ("ullAvailPhys", ctypes.c_ulonglong),
        ("ullTotalPageFile", ctypes.c_ulonglong),
        ("ullAvailPageFile", ctypes.c_ulonglong),
        ("ullTotalVirtual", ctypes.c_ulonglong),
        ("ullAvailVirtual", ctypes.c_ulonglong),
        ("ullAvailExtendedVirtual", ctypes.c_ulonglong),
    ]


def _windows_memory() -> tuple[int, int]:
    status = _MemStatus()
    status.dwLength = ctypes.sizeof(_MemStatus)
    if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):  # type: ignore[attr-defined]
        return int(status.ullTotalPhys), int(status.ullAvailPhys)
    return 0, 0


def _sysconf_total() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def ram() -> tuple[int, int]:
    """(total, available) system memory in bytes (0 where unknown)."""
    if sys.platform.startswith("linux"):
        info = _meminfo()
        total = info.get("MemTotal", 0) or _sysconf_total()
        return total, info.get("MemAvailable", info.get("MemFree", total))
    if sys.platform == "darwin":
        total = _sysctl_int("hw.memsize")
        return total, total  # macOS reports no simple "available"; use the total
    if sys.platform == "win32":
        return _windows_memory()
    total = _sysconf_total()
    return total, total


def ram_total() -> int:
    return ram()[0]


# -- GPUs ------------------------------------------------------------------------------


def _nvml_gpus() -> list[Gpu] | None:
    """NVIDIA GPUs through NVML (`pip install nvidia-ml-py`); None if NVML is unusable."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:
        return None
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            name = name.decode() if isinstance(name, bytes) else str(name)
            gpus.append(Gpu(name, int(mem.total), int(mem.free), "NVIDIA"))
        return gpus
    except Exception:
        return None
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def _nvidia_smi_gpus() -> list[Gpu] | None:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_nvidia_smi(out.stdout) if out.returncode == 0 else None


def parse_nvidia_smi(text: str) -> list[Gpu]:
    """Rows of `name, total MiB, free MiB` (nvidia-smi's csv,noheader,nounits)."""
    gpus = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.rsplit(",", 2)]
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            gpus.append(Gpu(parts[0], int(parts[1]) << 20, int(parts[2]) << 20, "NVIDIA"))
    return gpus


def apple_gpu_budget(total_ram: int) -> int:
    """Metal's default working-set limit: about 2/3 of RAM up to 36 GB, 3/4 above."""
    return total_ram * 2 // 3 if total_ram <= 36 * GiB else total_ram * 3 // 4


def _apple_gpus(total_ram: int) -> list[Gpu] | None:
    if sys.platform != "darwin" or platform.machine() != "arm64" or not total_ram:
        return None
    chip = ""
    try:
        out = subprocess.run(
            ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=2
        )
        chip = out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return [
        Gpu(
            chip or "Apple Silicon GPU",
            total_ram,
            apple_gpu_budget(total_ram),
            "Apple",
            unified=True,
        )
    ]


def gpus(total_ram: int | None = None) -> list[Gpu]:
    """GPUs and their memory, without loading llama.cpp (empty if none found)."""
    for probe in (_nvml_gpus, _nvidia_smi_gpus):
        found = probe()
        if found:
            return found
    return _apple_gpus(ram()[0] if total_ram is None else total_ram) or []


# -- the llama.cpp build -----------------------------------------------------------------


def llama_lib_dir() -> Path | None:
    """llama-cpp-python's folder of shared libraries, found without importing it."""
    from importlib.util import find_spec

    try:
        spec = find_spec("llama_cpp")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    pkg = Path(next(iter(spec.submodule_search_locations)))
    return pkg / "lib" if (pkg / "lib").is_dir() else pkg


def llama_lib_stamp() -> str:
    """The installed llama.cpp libraries' names, sizes and times: changes with every build."""
    lib = llama_lib_dir()
    if lib is None:
        return ""
    try:
        files = sorted(p for p in lib.iterdir() if "ggml" in p.name or "llama" in p.name)
        return " ".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)
    except OSError:
        return ""


def backend_from_libs(names: list[str]) -> str:
    """The GPU backend a set of library file names provides, or "CPU"."""
    low = [n.lower() for n in names]
    for key, label in _BACKEND_LIBS:
        if any(n.startswith((f"libggml-{key}", f"ggml-{key}")) for n in low):
            return label
    return "CPU"


@cache
def llama_backend() -> str:
    """The GPU backend compiled into the installed llama.cpp ("CPU" for none)."""
    lib = llama_lib_dir()
    if lib is None:
        return "CPU"
    try:
        return backend_from_libs([p.name for p in lib.iterdir()])
    except OSError:
        return "CPU"


# -- all together ------------------------------------------------------------------------


def detect(devices: Callable[[], list[Gpu]] | None = None) -> Hardware:
    """This machine; `devices` (llama.cpp's own list, `launch.machine`) is asked for the
    GPUs when the fast probes found none on a build that can offload."""
    total, available = ram()
    found = gpus(total)
    backend = llama_backend()
    if devices is not None and backend != "CPU" and not found:
        found = devices()
    return Hardware(total, available, physical_cores(), tuple(found), backend)


_detected: Hardware | None = None


def current() -> Hardware:
    """`detect()`, once per process."""
    global _detected
    if _detected is None:
        _detected = detect()
    return _detected
