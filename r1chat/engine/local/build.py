"""What the installed llama.cpp build is and sees: its version, its summary, whether it can
offload, its GPU devices. Each loads llama.cpp (imports llama_cpp: slow): for `doctor`,
the repack probe's key and the engine's launch, never for `r1chat models`."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from r1chat.engine.local.native import lib


@dataclass(frozen=True, slots=True)
class Device:
    """A non-CPU device llama.cpp can use, with its memory in bytes."""

    name: str
    description: str
    total: int
    free: int


def llama_offload_supported() -> bool:
    """Whether this build can put layers on a GPU, from llama.cpp itself."""
    return bool(lib().llama_supports_gpu_offload())


def _lib_dir() -> Path | None:
    spec = find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    pkg = Path(next(iter(spec.submodule_search_locations)))
    return pkg / "lib" if (pkg / "lib").is_dir() else pkg


def _loaded_lib(*names: str) -> ctypes.CDLL | None:
    """One of llama-cpp-python's shared libraries, after llama_cpp has loaded them."""
    try:
        lib()  # (loads libggml, its backends and libllama)
    except ImportError:
        return None
    lib_dir = _lib_dir()
    path = next((lib_dir / n for n in names if lib_dir and (lib_dir / n).exists()), None)
    if path is None:
        return None
    try:
        return ctypes.CDLL(str(path))
    except OSError:
        return None


def ggml_devices() -> list[Device]:
    """Non-CPU devices llama.cpp sees, with their memory. Works for every backend (Vulkan
    and ROCm included), so it backs up the fast probes of `models.hardware`."""
    g = _loaded_lib("libggml.so", "libggml.dylib", "ggml.dll")
    if g is None:
        return []
    try:
        g.ggml_backend_dev_count.restype = ctypes.c_size_t
        g.ggml_backend_dev_get.restype = ctypes.c_void_p
        g.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
        g.ggml_backend_dev_name.restype = ctypes.c_char_p
        g.ggml_backend_dev_name.argtypes = [ctypes.c_void_p]
        g.ggml_backend_dev_description.restype = ctypes.c_char_p
        g.ggml_backend_dev_description.argtypes = [ctypes.c_void_p]
        size_p = ctypes.POINTER(ctypes.c_size_t)
        g.ggml_backend_dev_memory.argtypes = [ctypes.c_void_p, size_p, size_p]
        found = []
        for i in range(g.ggml_backend_dev_count()):
            dev = g.ggml_backend_dev_get(i)
            name = (g.ggml_backend_dev_name(dev) or b"").decode(errors="replace")
            if name.upper().startswith(("CPU", "BLAS", "AMX", "ACCELERATE")):
                continue
            desc = (g.ggml_backend_dev_description(dev) or b"").decode(errors="replace")
            free, total = ctypes.c_size_t(), ctypes.c_size_t()
            g.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
            found.append(Device(name, desc, int(total.value), int(free.value)))
        return found
    except (OSError, AttributeError):
        return []


def llama_build() -> str:
    """The installed llama.cpp's ggml version and commit, e.g. `ggml 0.25.3 (commit 0c1e570)`."""
    lib = _loaded_lib("libllama.so", "libllama.dylib", "llama.dll")
    if lib is None:
        return ""
    try:
        lib.ggml_version.restype = ctypes.c_char_p
        lib.ggml_commit.restype = ctypes.c_char_p
        version = (lib.ggml_version() or b"").decode(errors="replace")
        commit = (lib.ggml_commit() or b"").decode(errors="replace")
    except AttributeError:
        return ""
    return f"ggml {version}" + (f" (commit {commit})" if commit else "")


def llama_system_info() -> str:
    """llama.cpp's build summary (the CPU features its kernels use)."""
    info: bytes = lib().llama_print_system_info()
    return info.decode("utf-8", errors="replace").strip().rstrip("|").strip()
