"""A GGUF header is read once: later launches take it from the cache, and a file that
changed (or a cache that cannot be read) is read again."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from r1chat.models import gguf
from r1chat.models.gguf import GGUFError, read_gguf
from r1chat.models.gguf_writer import write_tiny_llama
from r1chat.models.headers import header


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files whose header was parsed."""
    parsed: list[Path] = []
    real = gguf._parse

    def parse(data: object, path: Path, size: int) -> gguf.GGUFInfo:
        parsed.append(path)
        return real(data, path, size)  # type: ignore[arg-type]

    monkeypatch.setattr(gguf, "_parse", parse)
    return parsed


def test_a_header_is_read_once_and_kept_whole(r1_vocab_path: Path, tmp_path: Path, reads) -> None:
    model = tmp_path / "r1.gguf"
    shutil.copy(r1_vocab_path, model)
    first = header(model)
    again = header(model)
    assert reads == [model]
    assert again == first == read_gguf(model)  # metadata, long arrays' lengths, tensors
    assert again.r1_vocab and again.chat_template


def test_a_changed_file_is_read_again(tmp_path: Path, reads) -> None:
    model = write_tiny_llama(tmp_path / "m.gguf", quantized=False)
    header(model)
    stat = model.stat()
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    header(model)
    assert len(reads) == 2


def test_an_unreadable_cache_is_read_past(tmp_path: Path, reads) -> None:
    model = write_tiny_llama(tmp_path / "m.gguf", quantized=False)
    first = header(model)
    for kept in (Path(os.environ["R1CHAT_HOME"]) / "data" / "headers").glob("*.json"):
        kept.write_text("{not json")
    assert header(model) == first
    assert len(reads) == 2


def test_a_bad_file_is_never_cached(tmp_path: Path, reads) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + b"\x03\x00")  # truncated
    for _ in range(2):
        with pytest.raises(GGUFError, match="truncated"):
            header(model)
    assert len(reads) == 2
