"""A GGUF whose header lies (well-formed, figures no model has) is refused at the door:
`models import`, a pull's verification and `-m PATH`, each in one line; nothing is
registered or made default. (`block_count` 2^31 makes llama.cpp itself abort.) A `-m` path
that is no file (a device, a pipe, a folder) says what it is."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from r1chat.config import paths
from r1chat.models.gguf import implausible, read_gguf
from r1chat.models.gguf_writer import write_llama
from tests.fixtures.cli import one_error_line, r1chat
from tests.fixtures.hub_server import FakeHub
from tests.fixtures.lying import LIES, write_lying_model

F32 = (("f32", "f32"),)
WHY = {
    "layers": "its header says 2,147,483,648 layers (a model has 1 to 1,024)",
    "missing-layers": "its header says 40 layers but the file holds weights for 1",
    "heads": "its header says 0 attention heads",
    "kv-heads": "its 4 attention heads do not share 3 KV heads evenly",
    "no-kv-heads": "its header says 0 KV heads (attention.head_count_kv)",
    "context": "its header says a context of 0 tokens",
    "embedding": "its header says an embedding length of 4,096 but its embeddings are 64 wide",
}


@pytest.mark.parametrize("lie", sorted(LIES))
def test_import_and_dash_m_refuse_each_lie(tmp_path: Path, lie: str) -> None:
    model = write_lying_model(tmp_path, lie)
    why = f"{model.name} is not a model llama.cpp can load: {WHY[lie]}"
    imported = r1chat("models", "import", str(model), "--name", "liar")
    assert imported.returncode == 1 and one_error_line(imported.stderr) == f"error: {why}"
    assert not (paths.models_dir() / "imported.json").exists()
    assert r1chat("models", "default").stdout.strip() != "liar"
    assert "liar" not in r1chat("models", "--json").stdout
    asked = r1chat("ask", "-m", str(model), "--no-log", "hi")
    assert asked.returncode == 1 and one_error_line(asked.stderr) == f"error: {why}"


def test_a_pulled_file_that_lies_is_deleted_not_installed(tmp_path: Path) -> None:
    model = write_lying_model(tmp_path, "layers")
    repo, file = (
        "bartowski/DeepSeek-R1-Distill-Qwen-1.5B-GGUF",
        "DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf",
    )
    with FakeHub() as hub:
        hub.add(repo, file, model.read_bytes())
        out = r1chat("models", "pull", "r1:1.5b", env={"HF_ENDPOINT": hub.endpoint})
    assert out.returncode == 1
    line = one_error_line(out.stderr)
    assert line.endswith(f"{WHY['layers']}; the download was deleted")
    assert not list((paths.models_dir() / repo).glob("*.gguf*"))
    listed = json.loads(r1chat("models", "--json").stdout)
    assert not any(m.get("installed") for m in listed["models"] if m["name"] == "r1:1.5b")


def test_honest_shapes_pass(tmp_path: Path) -> None:
    per_layer = {
        "llama.attention.head_count": ("i32", [4, 0]),
        "llama.attention.head_count_kv": ("i32", [2, 0]),
    }
    hybrid = write_llama(
        tmp_path / "hybrid.gguf", layers=F32 * 2, n_embd=64, n_ff=128, metadata=per_layer
    )
    assert implausible(read_gguf(hybrid)) is None  # layers without attention (hybrids)
    shard = {"llama.block_count": 2, "split.count": 2}
    split = write_llama(
        tmp_path / "split-00001-of-00002.gguf", layers=F32, n_embd=64, n_ff=128, metadata=shard
    )
    assert implausible(read_gguf(split)) is None  # the other shard holds the second layer


def test_a_model_path_that_is_no_file_says_what_it_is(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    for given, what in (
        ("/dev/zero", "/dev/zero is not a file but a device"),
        (str(tmp_path / "pipe"), f"{tmp_path / 'pipe'} is not a file but a named pipe"),
        (str(tmp_path), f"{tmp_path} is a directory, not a GGUF file"),
    ):
        asked = r1chat("ask", "-m", given, "--no-log", "hi")
        assert asked.returncode == 1 and one_error_line(asked.stderr) == f"error: {what}"
