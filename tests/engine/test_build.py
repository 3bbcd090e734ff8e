"""What llama.cpp says of its build and devices (`engine.local.build`), through the real
library."""

from __future__ import annotations

from r1chat.engine.local import build as hardware


def test_llama_build_and_devices() -> None:
    assert hardware.llama_build().startswith("ggml ")
    assert "CPU" in hardware.llama_system_info() or hardware.llama_system_info()
    devices = hardware.ggml_devices()
    assert all(d.total >= 0 for d in devices)
    if not hardware.llama_offload_supported():
        assert devices == []
