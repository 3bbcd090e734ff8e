"""Open a GGUF with llama.cpp: the one place where the local engine meets the model
manager, the machine and the config.

A model is resolved to a file (`models.store`), its header read (`models.gguf`, cached by
`models.headers`: clear errors for missing, non-GGUF, truncated and implausible files
before llama.cpp sees them), its offload decided (`models.fit`) and whether llama.cpp may
repack its weights (`launch.repack`); `LocalEngine` receives the outcome.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from r1chat.config.settings import Settings
from r1chat.core.errors import R1ChatError
from r1chat.core.request import DEFAULT_CTX

if TYPE_CHECKING:
    from r1chat.engine.local.engine import LocalEngine


def model_path(spec: str) -> Path:
    """A model given as a path, a catalog name (`r1:7b`, `owner/repo:q4_k_m`) or an
    imported name."""
    from r1chat.models.store import resolve_model

    return resolve_model(spec)


def open_local(
    path: str | Path,
    *,
    n_ctx: int = DEFAULT_CTX,
    gpu_layers: int | None = None,
    threads: int | None = None,
    name: str | None = None,
    kv_type: str = "f16",
    flash_attn: str = "auto",
    repack: str = "auto",
    sequences: int = 1,
) -> LocalEngine:
    """Load a GGUF file with llama.cpp. Without `gpu_layers`: every layer that fits on
    the GPU when this llama.cpp build can offload, else none; without `threads`: one per
    physical core. The KV cache is `kv_type`; flash attention `auto` is llama.cpp's own
    choice: on wherever the layers' device has the kernel (the CPU always). On the CPU it
    decodes ~7% faster on a short context, 0.92-1.18x on a long one (bench/flash_attn.py);
    several batched replies gain ~10% (bench/serve_parallel.py). `repack` (auto, on, off):
    whether llama.cpp repacks weights for its CPU kernels (`launch.repack`). With
    `sequences` > 1, a `BatchEngine`: that many replies at once, `n_ctx` each."""
    from r1chat.config import paths
    from r1chat.engine.local.build import llama_offload_supported
    from r1chat.engine.local.engine import LocalEngine, ModelFile
    from r1chat.launch.machine import deep_hardware
    from r1chat.launch.repack import decide, require_runs
    from r1chat.models import hardware, inuse
    from r1chat.models.fit import Shape, auto_gpu_layers, context_problem
    from r1chat.models.headers import header

    path = Path(path).expanduser()
    meta = header(path)
    shape = Shape.from_gguf(path, meta).with_kv(kv_type)
    trained = int(meta.arch_key("context_length", 0) or 0)
    hw = hardware.current()
    if problem := context_problem(shape, n_ctx, hw, trained):
        raise R1ChatError(problem)
    if sequences > 1 and context_problem(shape, n_ctx * sequences, hw):
        fit = max(n for n in range(1, sequences) if not context_problem(shape, n_ctx * n, hw))
        raise R1ChatError(
            f"--parallel {sequences}: {sequences} KV caches of {n_ctx:,} tokens do not fit "
            f"in this machine's memory beside the model; {fit} do (use --parallel {fit} "
            "or a smaller --ctx)"
        )
    kernels = decide(repack)
    require_runs(kernels)
    offload = llama_offload_supported()
    if gpu_layers is None:
        gpu_layers = auto_gpu_layers(shape, n_ctx * sequences, deep_hardware()) if offload else 0
    backend = "CPU"  # where the layers run, decided here once
    if offload and gpu_layers != 0:
        built = hardware.llama_backend()
        backend = "GPU" if built == "CPU" else built  # offload through a library unnamed here
    kind: type[LocalEngine] = LocalEngine
    if sequences > 1:
        from r1chat.engine.local.batch import BatchEngine

        kind = BatchEngine
    held = inuse.hold(path)  # (`models rm` leaves a model in use alone)
    try:
        engine = kind(
            ModelFile(
                path, name or meta.name, meta.architecture, meta.chat_template, meta.r1_vocab
            ),
            n_ctx=n_ctx,
            gpu_layers=gpu_layers,
            threads=threads or hardware.physical_cores(),
            backend=backend,
            log_path=paths.llama_log_file(),
            kv_type=kv_type,
            flash_attn=flash_attn,
            repack=kernels.on,
            sequences=sequences,
        )
    except BaseException:
        if held is not None:
            held.close()
        raise
    engine.keep(held)
    return engine


def open_named(spec: str, settings: Settings, name: str | None = None) -> LocalEngine:
    """Load local model `spec` (a catalog or imported name, or a path) as `settings` say;
    `name` for the engine's info (default: the GGUF's own)."""
    return open_local(
        model_path(spec),
        n_ctx=settings.n_ctx or DEFAULT_CTX,
        gpu_layers=settings.gpu_layers,
        threads=settings.threads,
        name=name,
        kv_type=settings.kv_type,
        flash_attn=settings.flash_attn,
        repack=settings.repack,
        sequences=settings.sequences,
    )


def slots_for(spec: str, settings: Settings) -> int:
    """How many replies at once local model `spec` runs as well as one (`serve`'s default
    `--parallel`), from its GGUF header and this machine."""
    from r1chat.models import hardware
    from r1chat.models.fit import Shape, slots_that_fit

    path = model_path(spec)
    shape = Shape.from_gguf(path).with_kv(settings.kv_type)
    return slots_that_fit(shape, settings.n_ctx or DEFAULT_CTX, hardware.current())


def largest_context(spec: str, settings: Settings) -> int:
    """The most context a reply can have with local model `spec` on this machine (each
    of `settings.sequences` slots, by the fit rule `--ctx` follows), up to what the model
    was trained for."""
    from r1chat.models import hardware
    from r1chat.models.fit import Shape, max_context
    from r1chat.models.headers import header

    path = model_path(spec)
    meta = header(path)
    shape = Shape.from_gguf(path, meta).with_kv(settings.kv_type)
    trained = int(meta.arch_key("context_length", 0) or 0) or settings.n_ctx or DEFAULT_CTX
    slots = settings.sequences
    fits = max_context(shape, hardware.current(), trained * slots, on_gpu=False) // slots
    return min(trained, fits // 256 * 256)
