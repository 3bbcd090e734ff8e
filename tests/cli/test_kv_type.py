"""The KV cache type and flash attention as model options: passed to real llama.cpp, in
the fit figures, refused in one line where they cannot work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from r1chat.config import paths
from r1chat.launch.local import open_local
from tests.cli.test_ask import ask
from tests.fixtures.scripted import ScriptedModel


def test_a_q8_0_cache_answers_and_reaches_llama_cpp(answer_model: ScriptedModel) -> None:
    proc = ask("-m", str(answer_model.path), "--kv-type", "q8_0", "--threads", "1", "Hi")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == answer_model.answer.strip()
    log = paths.llama_log_file().read_text(encoding="utf-8")
    assert "K (q8_0)" in log and "V (q8_0)" in log  # llama.cpp's own words
    assert "flash_attn            = enabled" in log  # auto: a quantized cache needs it


def test_the_engine_says_its_cache_in_the_status(answer_model: ScriptedModel) -> None:
    for options, status in [
        ({"kv_type": "q4_0"}, "CPU 1 thread · KV q4_0"),
        ({}, "CPU 1 thread"),  # llama.cpp's defaults say nothing
        ({"flash_attn": "off"}, "CPU 1 thread · no flash attention"),
    ]:
        engine = open_local(answer_model.path, n_ctx=256, threads=1, **options)
        try:
            assert engine.info.offload == status
        finally:
            engine.close()


def test_flash_attention_auto_is_llama_cpps_choice(smollm2_path: Path) -> None:
    """auto leaves it to llama.cpp, which turns it on where the device has the kernel (the
    CPU does)."""
    log = paths.llama_log_file()
    for setting, said in [("auto", "Flash Attention enabled"), ("off", "= disabled")]:
        start = log.stat().st_size if log.exists() else 0
        open_local(smollm2_path, n_ctx=256, threads=1, flash_attn=setting).close()
        loaded = log.read_text(encoding="utf-8")[start:]
        assert said in loaded
        assert ("FLASH_ATTN_EXT" in loaded) == (setting == "auto")


def test_a_quantized_cache_without_flash_attention_is_refused(answer_model: ScriptedModel) -> None:
    proc = ask("-m", str(answer_model.path), "--kv-type", "q4_0", "--flash-attn", "off", "Hi")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: a q4_0 KV cache needs flash attention: use --flash-attn auto (or on), "
        "or --kv-type f16"
    )


def test_the_fit_follows_the_kv_type(tmp_path: Path) -> None:
    def r7b(*args: str) -> dict:
        cmd = [sys.executable, "-m", "r1chat", "models", "--json", *args]
        out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
        return next(m for m in out["models"] if m["name"] == "r1:7b")

    f16, q8 = r7b(), r7b("--kv-type", "q8_0")
    assert f16["fit"]["kv_cache"] == 57_344 * 8192 and q8["fit"]["kv_cache"] == 30_464 * 8192
    assert f16["fit"]["memory"] - q8["fit"]["memory"] == (57_344 - 30_464) * 8192
    cmd = [sys.executable, "-m", "r1chat", "models", "info", "r1:7b", "--json"]
    info = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    per_token = {k: v["bytes_per_token"] for k, v in info["context_by_kv_type"].items()}
    assert per_token == {"f16": 57_344, "q8_0": 30_464, "q4_0": 16_128}


def test_a_bad_kv_type_in_the_config_is_one_line(answer_model: ScriptedModel) -> None:
    config = paths.config_file()
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[model]\nkv_type = "q9"\n', encoding="utf-8")
    proc = ask("-m", str(answer_model.path), "Hi")
    assert proc.returncode == 2
    assert "kv_type" in proc.stderr and "'f16' or 'q8_0' or 'q4_0'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
