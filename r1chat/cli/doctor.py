"""`r1chat doctor`: versions, backend, memory, paths, a recommended model and a self-test."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any

from r1chat.core.request import DEFAULT_CTX


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "doctor",
        help="check this installation (llama.cpp build, GPU, paths) and self-test",
        description="Report versions, the llama.cpp backend and GPU offload support, memory, "
        "where files live and which model suits this machine; then load a tiny generated "
        "GGUF through llama.cpp (on the GPU when possible) to prove the build works.",
    )
    p.add_argument(
        "--no-self-test",
        dest="self_test",
        action="store_false",
        help="skip loading the tiny test model",
    )
    p.add_argument(
        "--ctx",
        type=int,
        default=DEFAULT_CTX,
        metavar="N",
        help=f"context size for the recommendation ({DEFAULT_CTX})",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--endpoint",
        metavar="URL",
        help="check an OpenAI-compatible server (or a [remotes.NAME]) instead",
    )
    p.add_argument("--api-key-env", metavar="NAME", help="variable holding its API key")
    p.add_argument("-m", "--model", help="with --endpoint: the served model to try")
    p.set_defaults(func=run)


def _versions() -> dict[str, str]:
    import platform
    from importlib import metadata

    from r1chat import __version__

    out = {
        "r1chat": __version__,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
    }
    for dist in ("llama-cpp-python", "huggingface-hub", "textual"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _gather(args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    """Facts, and problems (each one line) that make the exit code 1."""
    import os

    from r1chat.config import paths
    from r1chat.core.errors import R1ChatError
    from r1chat.launch.machine import deep_hardware, llama_facts
    from r1chat.models import store
    from r1chat.models.fit import recommend

    problems: list[str] = []
    facts: dict[str, Any] = {"versions": _versions()}
    try:
        facts["llama_cpp"] = llama_facts()
    except Exception as e:  # a broken llama-cpp-python install: say so, keep going
        facts["llama_cpp"] = {"error": str(e)}
        problems.append(f"llama-cpp-python does not load: {e}")
    hw = deep_hardware()
    facts["hardware"] = hw.to_dict()
    nvidia = any(g.vendor == "NVIDIA" for g in hw.gpus)
    if nvidia and not facts["llama_cpp"].get("offload"):
        facts["hint"] = (
            "an NVIDIA GPU is present but this llama.cpp build cannot use it; "
            'reinstall with: CMAKE_ARGS="-DGGML_CUDA=on" pip install '
            "--force-reinstall --no-cache-dir llama-cpp-python"
        )
    models = paths.models_dir()
    facts["paths"] = {
        "config": str(paths.config_file()),
        "data": str(paths.data_dir()),
        "models": str(models),
        "logs": str(paths.log_dir()),
        "llama_log": str(paths.llama_log_file()),
        "history": str(paths.history_db()),
    }
    with contextlib.suppress(OSError):
        facts["models_disk_free"] = store.free_bytes(models)
    facts["hub"] = {
        "endpoint": os.environ.get("HF_ENDPOINT", "https://huggingface.co"),
        "token": "set" if os.environ.get("HF_TOKEN") else "not set (public models only)",
        "offline": bool(os.environ.get("HF_HUB_OFFLINE")),
    }
    try:
        from r1chat.models.catalog import load_catalog

        catalog = load_catalog()
        facts["catalog"] = list(catalog.sources)
        best = recommend(catalog, hw, args.ctx)
        if best:
            entry, fit = best
            facts["recommended"] = {
                "name": entry.name,
                "size": entry.size,
                "verdict": fit.label,
                "context": args.ctx,
                "installed": store.is_installed(entry),
            }
        installed = store.installed_entries(catalog)
        facts["installed"] = [e.name for e in installed] + sorted(store.load_index())
    except R1ChatError as e:
        problems.append(str(e))
    repack = True
    if "error" not in facts["llama_cpp"]:
        from r1chat.config.file import Config
        from r1chat.launch.repack import decide

        try:
            kernels = decide(Config.load().values.model.repack or "auto")
        except R1ChatError as e:
            problems.append(str(e))
        else:
            repack = kernels.on
            facts["repack"] = {"on": kernels.on, "why": kernels.why, "runs": kernels.runs}
            if not kernels.runs:
                problems.append(kernels.why)
    if (
        args.self_test
        and "error" not in facts["llama_cpp"]
        and facts.get("repack", {}).get("runs", True)
    ):
        from r1chat.diagnostics.selftest import run_self_test

        result = run_self_test(repack=repack)
        facts["self_test"] = {
            "ok": result.ok,
            "gpu_layers": result.gpu_layers,
            "load_seconds": round(result.load_seconds, 3),
            "tokens": result.tokens,
            "tokens_per_second": round(result.tokens_per_second, 1),
            "error": result.error,
        }
        if not result.ok:
            problems.append(f"self-test failed: {result.error} (see {paths.llama_log_file()})")
    return facts, problems


def run(args: argparse.Namespace) -> int:
    from r1chat.core.units import human

    if args.endpoint:
        from r1chat.diagnostics.endpoint import run_endpoint_check

        return run_endpoint_check(
            args.endpoint, model=args.model, api_key_env=args.api_key_env, as_json=args.json
        )

    facts, problems = _gather(args)
    if args.json:
        facts["problems"] = problems
        print(json.dumps(facts, indent=2))
        return 1 if problems else 0
    v = facts["versions"]
    lc = facts["llama_cpp"]
    hw = facts["hardware"]
    out: list[tuple[str, str]] = [
        ("r1chat", f"{v['r1chat']} (Python {v['python']}, {v['platform']})"),
        (
            "llama-cpp-python",
            f"{v['llama-cpp-python']}" + (f", {lc['build']}" if lc.get("build") else ""),
        ),
    ]
    if "error" in lc:
        out.append(("llama.cpp", f"ERROR: {lc['error']}"))
    else:
        out.append(("llama.cpp", lc["system_info"]))
        backend = hw["backend"]
        offload = "yes" if lc["offload"] else "no"
        out.append(("backend", f"{backend} (GPU offload: {offload})"))
    if rp := facts.get("repack"):
        out.append(("repack", f"{'on' if rp['on'] else 'off'} ({rp['why']})"))
    out.append(("CPU", f"{hw['cores']} physical cores"))
    out.append(("RAM", f"{human(hw['ram_total'])} ({human(hw['ram_available'])} available)"))
    if hw["gpus"]:
        for g in hw["gpus"]:
            mem = (
                f"{human(g['total'])} unified, {human(g['free'])} usable by the GPU"
                if g["unified"]
                else f"{human(g['total'])} ({human(g['free'])} free)"
            )
            out.append(("GPU", f"{g['name']}: {mem}"))
    else:
        out.append(("GPU", "none found"))
    if "hint" in facts:
        out.append(("hint", facts["hint"]))
    p = facts["paths"]
    out += [
        ("config", p["config"]),
        ("data", p["data"]),
        (
            "models",
            p["models"]
            + (
                f" ({human(facts['models_disk_free'])} free)" if "models_disk_free" in facts else ""
            ),
        ),
        ("logs", p["logs"]),
    ]
    hub = facts["hub"]
    out.append(
        (
            "hub",
            f"{hub['endpoint']}; HF_TOKEN {hub['token']}" + ("; offline" if hub["offline"] else ""),
        )
    )
    if "catalog" in facts:
        out.append(("catalog", ", ".join(facts["catalog"])))
        out.append(("installed", ", ".join(facts["installed"]) or "none"))
    if rec := facts.get("recommended"):
        how = "installed" if rec["installed"] else f"pull with: r1chat models pull {rec['name']}"
        out.append(
            (
                "recommended",
                f"{rec['name']} ({human(rec['size'])}): {rec['verdict']} at "
                f"{rec['context']:,} tokens; {how}",
            )
        )
    elif "catalog" in facts:
        out.append(("recommended", "no local model fits this machine; use a remote server"))
    if st := facts.get("self_test"):
        if st["ok"]:
            where = "GPU (all layers)" if st["gpu_layers"] else "CPU"
            out.append(
                (
                    "self-test",
                    f"ok: tiny quantized GGUF (Q4_0, Q4_1, Q4_K, Q5_K, Q6_K, Q8_0) loaded on "
                    f"{where} in {st['load_seconds'] * 1000:.0f} ms, {st['tokens']} tokens at "
                    f"{st['tokens_per_second']:,.0f} tokens/s (a 3-layer test model: this "
                    "checks the build, it does not measure a real model's speed)",
                )
            )
        else:
            out.append(("self-test", f"FAILED: {st['error']}"))
    width = max(len(k) for k, _ in out)
    for k, val in out:
        print(f"{k:<{width}}  {val}")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0
