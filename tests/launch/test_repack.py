"""Repacked kernels: the real probe on this CPU, a probe that crashes (through a seam, as on
a CPU that advertises AMX it is not given), the setting reaching llama.cpp, doctor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from r1chat.config import paths
from r1chat.launch import repack
from r1chat.launch.local import open_local
from r1chat.models.gguf_writer import write_tiny_llama
from tests.fixtures.cli import one_error_line, r1chat

REPACKED = ("repack tensor", "CPU_REPACK model buffer", "AMX model buffer")
"""What llama.cpp's log says when it repacks weights (x86/Arm layouts, AMX tiles)."""


@pytest.fixture
def quantized(tmp_path: Path) -> Path:
    """The probe's model: every quantized kind the catalog ships."""
    return write_tiny_llama(tmp_path / "quantized.gguf", quantized=True)


BRIEF = ("--threads", "1", "--ctx", "256", "--max-tokens", "2", "--no-log")
"""Random weights answer nothing useful: a token or two is enough to run the kernels."""


def last_load(log: Path) -> str:
    """llama.cpp's log of the last model r1chat loaded."""
    return log.read_text().rsplit("--- r1chat loading", 1)[1]


def test_the_real_probe_decides_once_per_build_and_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    found = repack.decide("auto")  # runs the kernels here, in a child process
    assert found.runs and found.why.startswith("auto: ")
    kept = json.loads(repack.cache_path().read_text())[repack.machine_key()]
    assert kept["repack"] is found.on and kept["why"] == found.why
    monkeypatch.setattr(repack, "probe", lambda: pytest.fail("probed again"))
    assert repack.decide("auto") == found


def test_on_and_off_need_no_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repack, "probe", lambda: pytest.fail("probed"))
    assert repack.decide("on").on and not repack.decide("off").on
    assert not repack.cache_path().exists()


def test_no_repack_reaches_llama_cpp(quantized: Path) -> None:
    open_local(quantized, n_ctx=256, threads=1, repack="off").close()
    log = paths.llama_log_file()
    assert "repack=False" in log.read_text()
    assert not any(mark in last_load(log) for mark in REPACKED)


@pytest.mark.parametrize(
    ("how", "expect"), [(("--no-repack",), "repack=False"), (("--repack", "on"), "repack=True")]
)
def test_the_command_line_and_config_choose(
    quantized: Path, how: tuple[str, ...], expect: str
) -> None:
    out = r1chat("ask", "-m", str(quantized), *BRIEF, *how, "hi")
    assert out.returncode in (0, 3), out.stderr  # (random weights: maybe no answer)
    assert expect in paths.llama_log_file().read_text()
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text('[model]\nrepack = "off"\n')
    r1chat("ask", "-m", str(quantized), *BRIEF, "hi")
    assert "repack=False" in last_load(paths.llama_log_file()).splitlines()[0]
    paths.config_file().write_text('[model]\nrepack = "sometimes"\n')
    bad = r1chat("ask", "-m", str(quantized), "hi")
    assert bad.returncode == 2
    assert "repack must be 'auto' or 'on' or 'off', not 'sometimes'" in one_error_line(bad.stderr)


def test_kernels_that_crash_the_probe_are_left_off_remembered_and_shown(
    tmp_path: Path, quantized: Path
) -> None:
    record = tmp_path / "probes"
    seams = ("--probe-crashes", "repacked", "--probe-record", str(record))
    doctor = r1chat("doctor", seams=seams)
    assert doctor.returncode == 0, doctor.stderr
    [line] = [ln for ln in doctor.stdout.splitlines() if ln.startswith("repack")]
    assert "off (auto: the repacked kernels crashed a probe on this CPU (SIGILL)" in line
    assert "self-test         ok: tiny quantized GGUF" in doctor.stdout
    assert record.read_text().splitlines() == ["probe repack=True", "probe repack=False"]
    again = json.loads(r1chat("doctor", "--json", "--no-self-test", seams=seams).stdout)
    assert again["repack"]["on"] is False and again["problems"] == []
    ask = r1chat("ask", "-m", str(quantized), *BRIEF, "hi", seams=seams)
    assert ask.returncode in (0, 3), ask.stderr
    assert record.read_text().count("probe") == 2  # remembered: no probe since
    assert "repack=False" in paths.llama_log_file().read_text()
    assert not any(mark in last_load(paths.llama_log_file()) for mark in REPACKED)


def test_a_build_that_crashes_without_repacking_too_is_refused_in_one_line(
    tmp_path: Path, quantized: Path
) -> None:
    seams = ("--probe-crashes", "always", "--probe-record", str(tmp_path / "probes"))
    ask = r1chat("ask", "-m", str(quantized), *BRIEF, "hi", seams=seams)
    assert ask.returncode == 1
    line = one_error_line(ask.stderr)
    assert "llama.cpp crashes on this CPU even without repacking (SIGILL)" in line
    assert "--no-cache-dir llama-cpp-python" in line
    doctor = r1chat("doctor", seams=seams)
    assert doctor.returncode == 1 and "even without repacking" in doctor.stderr
    assert "self-test" not in doctor.stdout  # it would crash doctor itself
