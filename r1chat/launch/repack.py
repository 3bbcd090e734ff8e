"""Whether llama.cpp may repack weights on this CPU: `[model] repack`, `--repack`,
`--no-repack`, and for `auto` a probe run once per llama.cpp build and CPU.

The probe (`r1chat.engine.local.kernels`) loads a tiny model of every quantized kind the
catalog ships (Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K) in a child process, repacked, and
decodes with it. If the child dies by a signal, the repacked kernels cannot run here
(a CPU that advertises AMX it is not given, say) and r1chat loads without them; if it dies
without repacking too, this llama.cpp build cannot run on this CPU at all, and loading a
model says so instead of crashing. The outcome is kept in `kernels.json` in the data
folder, keyed by the build and the CPU, so the probe costs its second once.
"""

from __future__ import annotations

import contextlib
import hashlib
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from r1chat.config import paths
from r1chat.core.errors import R1ChatError
from r1chat.models import hardware, jsonfile

CHOICES = ("auto", "on", "off")
PROBE_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class Repack:
    """What llama.cpp is told, and why (for `doctor`)."""

    on: bool
    why: str
    runs: bool = True  # False: llama.cpp crashes on this CPU even without repacking


def cache_path() -> Path:
    return paths.data_dir() / "kernels.json"


def decide(setting: str = "auto") -> Repack:
    """`on` and `off` as set; `auto` from the probe (run now if this build and CPU have
    no result yet). Raises nothing: a probe that cannot run leaves llama.cpp's default."""
    if setting == "on":
        return Repack(True, "on, as set")
    if setting == "off":
        return Repack(False, "off, as set")
    key = machine_key()
    known = _read().get(key)
    if isinstance(known, dict) and isinstance(known.get("repack"), bool):
        return Repack(known["repack"], str(known.get("why", "")), bool(known.get("runs", True)))
    try:
        found, keep = probe()
    except OSError as e:  # no room for its tiny model: llama.cpp's default, asked again later
        found, keep = Repack(True, f"auto: the kernel probe could not run ({e.strerror})"), False
    if keep:
        with contextlib.suppress(OSError, R1ChatError):  # a full disk: probe again next time
            data = _read()
            data[key] = {
                "repack": found.on,
                "runs": found.runs,
                "why": found.why,
                "checked": time.strftime("%Y-%m-%d %H:%M:%S"),
                "cpu": hardware.cpu_identity()[:120],
            }
            jsonfile.write(cache_path(), data)
    return found


def require_runs(found: Repack) -> None:
    """Refuse to load a model where llama.cpp is known to crash (one line, not a signal)."""
    if not found.runs:
        raise R1ChatError(found.why)


def machine_key() -> str:
    """This llama.cpp build and this CPU, hashed."""
    from r1chat.engine.local.build import llama_build, llama_system_info

    parts = (
        llama_build(),
        llama_system_info(),
        hardware.llama_lib_stamp(),
        hardware.cpu_identity(),
        sys.executable,
    )
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def probe() -> tuple[Repack, bool]:
    """Run the kernels in a child process, repacked, then (if that died) not; returns the
    decision and whether it is worth remembering (an inconclusive probe is not)."""
    with tempfile.TemporaryDirectory(prefix="r1chat-probe-") as tmp:
        from r1chat.models.gguf_writer import write_tiny_llama

        model = write_tiny_llama(Path(tmp) / "probe.gguf", quantized=True)
        death = _run(model, repack=True)
        if death is None:
            return Repack(True, "auto: the repacked kernels ran in a probe on this CPU"), True
        if death.startswith("?"):  # it did not die by a signal: no verdict
            return Repack(True, f"auto: the kernel probe did not run ({death[1:]})"), False
        plain = _run(model, repack=False)
    if plain is None:
        why = (
            f"auto: the repacked kernels crashed a probe on this CPU ({death}), so models "
            "load without repacking"
        )
        return Repack(False, why), True
    why = (
        f"llama.cpp crashes on this CPU even without repacking ({plain}): this build "
        "was probably compiled for another CPU; reinstall it with `pip install "
        "--force-reinstall --no-cache-dir llama-cpp-python`"
    )
    return Repack(False, why, runs=False), True


def _run(model: Path, *, repack: bool) -> str | None:
    """None if the probe ran; how it died (`SIGILL`, `timed out`), or `?` and what it said
    when it failed without a signal."""
    command = probe_command(model, repack=repack)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"it hung for {PROBE_TIMEOUT_S:.0f} s"
    except OSError as e:
        return f"?{e.strerror}"
    if done.returncode == 0:
        return None
    if done.returncode < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-done.returncode).name
        return f"signal {-done.returncode}"
    last = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit {done.returncode}"]
    return "?" + last[0]


def probe_command(model: Path, *, repack: bool) -> list[str]:
    """The child that runs the kernels (tests replace it with one that crashes)."""
    command = [sys.executable, "-m", "r1chat.engine.local.kernels", str(model)]
    command += ["--threads", str(hardware.physical_cores())]
    return command if repack else [*command, "--no-repack"]


def _read() -> dict[str, object]:
    try:
        return jsonfile.read(cache_path(), "the kernel probe's results")
    except R1ChatError:
        return {}
