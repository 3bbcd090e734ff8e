"""This machine as llama.cpp sees it: the hardware with the GPUs llama.cpp itself lists
(when the fast probes found none), and its build's facts for `doctor`. Loads llama.cpp."""

from __future__ import annotations

import sys
from typing import Any

from r1chat.models.hardware import Gpu, Hardware, detect


def deep_hardware() -> Hardware:
    """`hardware.detect()`, asking llama.cpp for the devices the fast probes missed."""
    from r1chat.engine.local.build import ggml_devices

    def devices() -> list[Gpu]:
        unified = sys.platform == "darwin"
        return [
            Gpu(d.description or d.name, d.total, d.free, d.name, unified=unified)
            for d in ggml_devices()
        ]

    return detect(devices)


def llama_facts() -> dict[str, Any]:
    """The llama.cpp build: `build`, `system_info` and whether it can `offload` (raises
    what a broken install raises)."""
    from r1chat.engine.local.build import llama_build, llama_offload_supported, llama_system_info

    return {
        "build": llama_build(),
        "system_info": llama_system_info(),
        "offload": llama_offload_supported(),
    }
