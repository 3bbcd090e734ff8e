"""What this machine has: CPU cores (and, later, RAM, GPU memory and offload backend)."""

from __future__ import annotations

import os
import subprocess
import sys


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
