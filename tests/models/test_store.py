"""Installed models: resolution of -m, imports, removal, the default model, locks."""

from __future__ import annotations

from pathlib import Path

import pytest

from r1chat.config import paths
from r1chat.core.errors import R1ChatError, UsageError
from r1chat.core.units import human
from r1chat.models import store
from r1chat.models.catalog import load_catalog
from r1chat.models.gguf_writer import write_tiny_llama
from r1chat.models.locks import FileLock


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("R1CHAT_HOME", str(tmp_path / "home"))
    for var in ("R1CHAT_MODELS", "R1CHAT_CATALOG"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "home"


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    return write_tiny_llama(tmp_path / "Tiny-Model-Q4_K_M.gguf")


def install(name: str) -> list[Path]:
    """Pretend `name` was pulled: put (non-GGUF) bytes under its final names."""
    entry = load_catalog().require(name)
    files = store.entry_paths(entry)
    for p in files:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"GGUF" + bytes(100))
    return files


def test_layout_under_the_models_dir() -> None:
    entry = load_catalog().require("r1:7b-q8_0")
    assert store.entry_paths(entry) == [
        paths.models_dir()
        / "bartowski"
        / "DeepSeek-R1-Distill-Qwen-7B-GGUF"
        / "DeepSeek-R1-Distill-Qwen-7B-Q8_0.gguf"
    ]
    split = load_catalog().require("r1:70b-q8_0")
    assert [p.parent for p in store.entry_paths(split)] == [store.entry_dir(split)] * 2


def test_resolve_a_catalog_name_that_is_not_installed() -> None:
    with pytest.raises(R1ChatError) as err:
        store.resolve_model("r1:7b")
    assert str(err.value) == (
        "model r1:7b is not installed; run: r1chat models pull r1:7b (or use a GGUF you have: "
        "r1chat models import FILE)"
    )


def test_resolve_mentions_an_interrupted_download() -> None:
    entry = load_catalog().require("r1:7b")
    part = store.part_path(store.entry_paths(entry)[0])
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 10)
    with pytest.raises(
        R1ChatError,
        match=r"not installed \(a download stopped at 0%\); run: "
        r"r1chat models pull r1:7b",
    ):
        store.resolve_model("r1:7b")
    assert store.state(entry).partial and not store.state(entry).installed


def test_resolve_installed_names_and_aliases() -> None:
    files = install("r1:7b")
    assert store.resolve_model("r1:7b") == files[0]
    assert store.resolve_model("R1:7B-Q4_K_M") == files[0]  # the same file
    assert store.is_installed(load_catalog().require("r1:7b-q4_k_m"))
    split = install("r1:70b-q8_0")
    assert store.resolve_model("r1:70b-q8_0") == split[0]


def test_resolve_paths(gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert store.resolve_model(str(gguf)) == gguf
    monkeypatch.chdir(gguf.parent)
    assert store.resolve_model(gguf.name) == gguf.absolute()
    with pytest.raises(R1ChatError, match=r"no such file: \./missing\.gguf"):
        store.resolve_model("./missing.gguf")
    with pytest.raises(R1ChatError, match="is a directory"):
        store.resolve_model(str(tmp_path))


def test_resolve_remote_and_unknown() -> None:
    with pytest.raises(R1ChatError, match="too big to run here"):
        store.resolve_model("r1:671b")
    with pytest.raises(R1ChatError, match=r"unknown model 'r1:8bb'; did you mean r1:8b\?"):
        store.resolve_model("r1:8bb")
    with pytest.raises(UsageError):
        store.resolve_model("  ")


def test_import_without_copy(gguf: Path) -> None:
    rec = store.import_model(gguf)
    assert rec.name == "tiny-model-q4_k_m" and not rec.copied and rec.size == gguf.stat().st_size
    assert store.resolve_model("tiny-model-q4_k_m") == gguf
    assert store.resolve_model("Tiny-Model-Q4_K_M") == gguf
    removal = store.remove_model("tiny-model-q4_k_m")
    assert removal.forget_only and gguf.exists()
    with pytest.raises(R1ChatError, match="unknown model"):
        store.resolve_model("tiny-model-q4_k_m")


def test_import_with_copy_and_a_name(gguf: Path) -> None:
    rec = store.import_model(gguf, name="mine", copy=True)
    copied = paths.models_dir() / "imported" / gguf.name
    assert rec.copied and Path(rec.path) == copied and copied.read_bytes() == gguf.read_bytes()
    assert store.resolve_model("mine") == copied
    store.remove_model("mine")
    assert not copied.exists() and gguf.exists()


def test_import_refuses_bad_files_and_names(gguf: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf at all")
    with pytest.raises(R1ChatError, match="is not a GGUF file"):
        store.import_model(junk)
    with pytest.raises(UsageError, match="r1:7b is a catalog name"):
        store.import_model(gguf, name="r1:7b")
    with pytest.raises(UsageError, match="bad model name"):
        store.import_model(gguf, name="has space")
    store.import_model(gguf, name="taken")
    other = write_tiny_llama(tmp_path / "other.gguf")
    with pytest.raises(UsageError, match="taken is already imported"):
        store.import_model(other, name="taken")


def test_an_imported_file_that_vanished(gguf: Path) -> None:
    store.import_model(gguf, name="gone")
    gguf.unlink()
    with pytest.raises(R1ChatError, match="points to a missing file"):
        store.resolve_model("gone")


def test_remove_a_download_and_its_partial_files() -> None:
    entry = load_catalog().require("r1:70b-q8_0")
    first, second = store.entry_paths(entry)
    first.parent.mkdir(parents=True)
    first.write_bytes(b"a" * 10)
    store.part_path(second).write_bytes(b"b" * 5)
    store.part_meta_path(second).write_text("{}")
    plan = store.plan_removal("r1:70b-q8_0")
    assert plan.bytes == 17 and len(plan.paths) == 3
    store.remove_model("r1:70b-q8_0")
    assert not store.entry_dir(entry).exists()
    with pytest.raises(R1ChatError, match="is not installed"):
        store.remove_model("r1:70b-q8_0")


def test_remove_waits_for_no_one_but_refuses_during_a_pull() -> None:
    install("r1:7b")
    entry = load_catalog().require("r1:7b")
    with store.entry_lock(entry), pytest.raises(R1ChatError, match="another r1chat is"):
        store.remove_model("r1:7b")
    store.remove_model("r1:7b")
    assert not store.is_installed(entry)


def test_lock_is_exclusive_and_says_who_holds_it(tmp_path: Path) -> None:
    import os

    lock = FileLock(tmp_path / "x.lock", "busy")
    with lock, pytest.raises(R1ChatError, match=rf"busy \(pid {os.getpid()}\)"):
        FileLock(tmp_path / "x.lock", "busy").acquire()
    with FileLock(tmp_path / "x.lock", "busy"):
        pass


def test_default_model(gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from r1chat.models import hardware
    from r1chat.models.hardware import Hardware

    gb = 1 << 30
    # nothing installed: the model doctor recommends for the machine (one recommendation)
    monkeypatch.setattr(hardware, "_detected", Hardware(32 * gb, 24 * gb, 8, (), "CPU"))
    assert store.default_model() == "r1:8b-0528"  # the biggest that runs well on a CPU
    monkeypatch.setattr(hardware, "_detected", Hardware(4 * gb, 3 * gb, 4, (), "CPU"))
    assert store.default_model() == "r1:1.5b"  # a small machine
    install("r1:1.5b")
    assert store.default_model() == "r1:1.5b"
    install("r1:7b")
    assert store.default_model() == "r1:7b"
    assert store.set_default_model("R1:14B") == "r1:14b"
    assert store.default_model() == "r1:14b"
    assert store.set_default_model(str(gguf)) == str(gguf)
    store.import_model(gguf, name="tiny")
    assert store.set_default_model("tiny") == "tiny"
    with pytest.raises(R1ChatError, match="unknown model"):
        store.set_default_model("nope")
    from r1chat.config.file import Config

    assert Config.load().get("model", "default") == "tiny"


def test_human_sizes() -> None:
    assert human(4_683_075_271) == "4.7 GB"
    assert human(999) == "999 B"
    assert human(1_500_000) == "1.5 MB"
