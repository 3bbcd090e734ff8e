"""`r1chat.models.download` in-process, through the real huggingface_hub client and a
loopback hub."""

from __future__ import annotations

import hashlib
import itertools
import time
from pathlib import Path

import pytest

from r1chat.core.errors import R1ChatError
from r1chat.models import download, store
from r1chat.models.catalog import Catalog, build, parse
from r1chat.models.download import bodies
from tests.fixtures.hub_server import FakeHub, make_gguf_bytes, point_client_at

REPO = "acme/Tiny-GGUF"
FILE = "Tiny-Q4_K_M.gguf"
SIZE = 3_000_000


def catalog_for(
    *, sha256: str | None = None, files: list[str] | None = None, subfolder: str | None = None
) -> Catalog:
    quant = f"files = {files!r}\n".replace("'", '"') if files else f'file = "{FILE}"\n'
    if sha256:
        quant += f'sha256 = "{sha256}"\n'
    if subfolder:
        quant += f'subfolder = "{subfolder}"\n'
    text = f"""
[models."tiny:1b"]
repo = "{REPO}"
layers = 2
kv_heads = 1
head_dim = 16
context = 2048
[models."tiny:1b".quants.Q4_K_M]
{quant}size = {SIZE}
"""
    return build([("test catalog", parse(text, "test catalog"))])


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("R1CHAT_HOME", str(tmp_path / "home"))
    for var in ("R1CHAT_MODELS", "R1CHAT_CATALOG", "HF_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    with FakeHub() as h:
        point_client_at(h, monkeypatch, tmp_path)
        yield h


@pytest.fixture
def data() -> bytes:
    return make_gguf_bytes(SIZE, seed=1)


def test_pull_downloads_verifies_and_reports_progress(hub: FakeHub, data: bytes) -> None:
    hub.add(REPO, FILE, data)
    entry = catalog_for().require("tiny:1b")
    seen: list[download.PullProgress] = []
    result = download.pull(entry, progress=seen.append)
    path = store.entry_paths(entry)[0]
    assert result.paths == (path,)
    assert path.read_bytes() == data
    assert result.downloaded == SIZE and result.resumed == 0 and not result.already
    assert not store.part_path(path).exists() and not store.part_meta_path(path).exists()
    assert seen[0].phase == "download" and seen[0].done == 0 and seen[0].total == SIZE
    assert [p.phase for p in seen[-2:]] == ["verify", "done"]
    assert all(a.done <= b.done for a, b in itertools.pairwise(seen))
    assert seen[-1].done == SIZE
    assert store.is_installed(entry)
    # a second pull has nothing to do and asks the hub nothing
    before = len(hub.requests)
    assert download.pull(entry).already
    assert len(hub.requests) == before


def test_resumes_in_process_after_the_connection_drops(hub: FakeHub, data: bytes) -> None:
    hub.add(REPO, FILE, data)
    hub.drop_after(FILE, 1_000_000, times=2)
    entry = catalog_for().require("tiny:1b")
    download.pull(entry)
    assert store.entry_paths(entry)[0].read_bytes() == data
    gets = hub.gets(FILE)
    assert [g.range is None for g in gets] == [True, False, False]
    starts = [int(g.range[6:-1]) for g in gets[1:] if g.range]
    # every byte received before the drop was kept: each retry starts where the last ended
    assert starts == [1_000_000, 2_000_000]


def test_interrupted_pull_keeps_the_part_and_the_next_pull_resumes(
    hub: FakeHub, data: bytes
) -> None:
    hub.add(REPO, FILE, data)
    hub.drop_after(FILE, 1_200_000, times=1)
    entry = catalog_for().require("tiny:1b")
    with pytest.raises(R1ChatError, match=r"interrupted .* run `r1chat models pull tiny:1b` "):
        download.pull(entry, retries=-1)
    path = store.entry_paths(entry)[0]
    part = store.part_path(path)
    kept = part.stat().st_size
    assert 0 < kept <= 1_200_000 and not path.exists()
    assert data.startswith(part.read_bytes())
    result = download.pull(entry)
    assert path.read_bytes() == data
    assert result.resumed == kept and result.downloaded == SIZE - kept
    assert hub.gets(FILE)[-1].range == f"bytes={kept}-"


def test_sha_mismatch_names_the_file_and_both_hashes_and_keeps_nothing(
    hub: FakeHub, data: bytes
) -> None:
    wrong = hashlib.sha256(b"something else").hexdigest()
    hub.add(REPO, FILE, data, sha256=wrong)  # the Hub's LFS sha256 disagrees with the bytes
    entry = catalog_for().require("tiny:1b")
    with pytest.raises(download.HashMismatch) as err:
        download.pull(entry)
    msg = str(err.value)
    assert FILE in msg and wrong in msg and hashlib.sha256(data).hexdigest() in msg
    path = store.entry_paths(entry)[0]
    assert not path.exists() and not store.part_path(path).exists()
    assert not store.part_meta_path(path).exists()


def test_catalog_sha256_is_checked_before_downloading(hub: FakeHub, data: bytes) -> None:
    hub.add(REPO, FILE, data)
    pinned = hashlib.sha256(b"the old file").hexdigest()
    entry = catalog_for(sha256=pinned).require("tiny:1b")
    with pytest.raises(R1ChatError, match="not the file the catalog pins"):
        download.pull(entry)
    assert hub.gets(FILE) == []


def test_catalog_sha256_that_matches_is_used(hub: FakeHub, data: bytes) -> None:
    hub.add(REPO, FILE, data)
    entry = catalog_for(sha256=hashlib.sha256(data).hexdigest()).require("tiny:1b")
    download.pull(entry)
    assert store.is_installed(entry)


def test_missing_file_is_a_one_line_error(hub: FakeHub, data: bytes) -> None:
    hub.add(REPO, "other.gguf", data)
    with pytest.raises(R1ChatError) as err:
        download.pull(catalog_for().require("tiny:1b"))
    assert str(err.value) == f"{FILE} not found in {REPO} (revision main)"


def test_unknown_repo(hub: FakeHub) -> None:
    with pytest.raises(R1ChatError, match=f"repository {REPO} not found"):
        download.pull(catalog_for().require("tiny:1b"))


def test_gated_repo_needs_the_token_and_the_token_stays_off_the_cdn(
    hub: FakeHub, data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.add(REPO, FILE, data)
    hub.gate(REPO, "hf_goodtoken")
    entry = catalog_for().require("tiny:1b")
    with pytest.raises(R1ChatError) as err:
        download.pull(entry)
    assert "is gated" in str(err.value) and "HF_TOKEN" in str(err.value)
    assert "\n" not in str(err.value)
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(R1ChatError, match="is gated"):
        download.pull(entry)
    monkeypatch.setenv("HF_TOKEN", "hf_goodtoken")
    download.pull(entry)
    assert store.entry_paths(entry)[0].read_bytes() == data
    assert all(r.token is None for r in hub.requests if r.host == "cdn")
    assert any(r.token == "hf_goodtoken" for r in hub.requests if r.method == "HEAD")


def test_disk_space_is_checked_first(
    hub: FakeHub, data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.add(REPO, FILE, data)
    monkeypatch.setattr(store, "free_bytes", lambda folder: SIZE)  # not enough with the margin
    with pytest.raises(R1ChatError, match=r"not enough disk space .* needs 3\.0 MB more"):
        download.pull(catalog_for().require("tiny:1b"))
    assert hub.gets(FILE) == []


def test_offline_mode(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(R1ChatError, match="HF_HUB_OFFLINE is set"):
        download.pull(catalog_for().require("tiny:1b"))
    assert hub.requests == []


def test_server_ignoring_range_restarts_cleanly(hub: FakeHub, data: bytes) -> None:
    hub.add(REPO, FILE, data)
    hub.ignore_range = True
    hub.drop_after(FILE, 700_000, times=1)
    entry = catalog_for().require("tiny:1b")
    result = download.pull(entry)
    assert store.entry_paths(entry)[0].read_bytes() == data
    assert result.downloaded == SIZE


def test_a_stale_part_from_another_version_is_discarded(hub: FakeHub, data: bytes) -> None:
    hub.add(REPO, FILE, data)
    entry = catalog_for().require("tiny:1b")
    path = store.entry_paths(entry)[0]
    path.parent.mkdir(parents=True)
    store.part_path(path).write_bytes(b"x" * 5000)
    store.part_meta_path(path).write_text('{"etag": "old", "size": 3000000}')
    result = download.pull(entry)
    assert path.read_bytes() == data and result.resumed == 0


def test_split_model_in_a_subfolder(hub: FakeHub) -> None:
    names = ["Tiny-Q8_0-00001-of-00002.gguf", "Tiny-Q8_0-00002-of-00002.gguf"]
    parts = [make_gguf_bytes(SIZE // 2, seed=i) for i in range(2)]
    for n, d in zip(names, parts, strict=True):
        hub.add(REPO, f"Tiny-Q8_0/{n}", d)
    entry = catalog_for(files=names, subfolder="Tiny-Q8_0").require("tiny:1b")
    seen: list[download.PullProgress] = []
    download.pull(entry, progress=seen.append)
    paths = store.entry_paths(entry)
    assert [p.name for p in paths] == names
    assert [p.read_bytes() for p in paths] == parts
    assert {(p.index, p.count) for p in seen} == {(1, 2), (2, 2)}


def test_a_second_pull_of_the_same_file_is_locked_out(hub: FakeHub, data: bytes) -> None:
    hub.add(REPO, FILE, data)
    entry = catalog_for().require("tiny:1b")
    with store.entry_lock(entry), pytest.raises(R1ChatError, match="another r1chat is"):
        download.pull(entry)
    download.pull(entry)  # the lock is free again
    assert store.is_installed(entry)


def test_remote_only_entries_cannot_be_pulled() -> None:
    from r1chat.models.catalog import load_catalog

    with pytest.raises(R1ChatError, match="remote-only"):
        download.pull(load_catalog().require("r1:671b"))


def test_a_cut_short_installed_file_is_fetched_again(hub: FakeHub, tmp_path: Path) -> None:
    """After a power cut the final file can come back short; the header check sees it."""
    from r1chat.models.gguf_writer import write_tiny_llama

    real = write_tiny_llama(tmp_path / "real.gguf").read_bytes()
    hub.add(REPO, FILE, real)
    entry = catalog_for().require("tiny:1b")
    path = store.entry_paths(entry)[0]
    path.parent.mkdir(parents=True)
    path.write_bytes(real[: len(real) // 2])
    result = download.pull(entry)
    assert not result.already and path.read_bytes() == real
    assert download.pull(entry).already


def test_through_huggingface_hubs_client_when_a_proxy_is_set(
    hub: FakeHub, data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bodies, "_uses_proxy", lambda url: True)
    hub.add(REPO, FILE, data)
    hub.drop_after(FILE, 1_000_000, times=1)
    entry = catalog_for().require("tiny:1b")
    download.pull(entry)
    assert store.entry_paths(entry)[0].read_bytes() == data
    assert [g.range for g in hub.gets(FILE)] == [None, "bytes=1000000-"]


def test_a_plain_git_file_is_checked_against_its_git_blob_sha1(hub: FakeHub) -> None:
    small = make_gguf_bytes(50_000, seed=3)
    hub.add(REPO, FILE, small, lfs=False)
    entry = catalog_for().require("tiny:1b")
    result = download.pull(entry)
    assert result.checks == ("git sha1",)
    assert store.entry_paths(entry)[0].read_bytes() == small


def test_without_redirect_the_token_goes_to_the_hub(
    hub: FakeHub, data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.redirect = False
    hub.add(REPO, FILE, data)
    hub.gate(REPO, "hf_ok")
    monkeypatch.setenv("HF_TOKEN", "hf_ok")
    result = download.pull(catalog_for().require("tiny:1b"))
    assert result.checks == ("sha256",)
    assert [g.token for g in hub.gets(FILE)] == ["hf_ok"]


def test_cancel_from_another_thread_keeps_the_partial_file(hub: FakeHub, data: bytes) -> None:
    import threading

    hub.add(REPO, FILE, data)
    hub.hold(FILE, 1_500_000)  # then the server says nothing: a read waits on it
    entry = catalog_for().require("tiny:1b")
    cancel = threading.Event()
    raised: list[BaseException] = []
    part = store.part_path(store.entry_paths(entry)[0])

    def run() -> None:
        try:
            download.pull(entry, cancel=cancel)
        except BaseException as e:
            raised.append(e)

    pulling = threading.Thread(target=run)
    pulling.start()
    while not (part.exists() and part.stat().st_size >= 500_000):
        assert pulling.is_alive(), raised
        time.sleep(0.01)
    cancel.set()
    pulling.join(10)  # the cancel ends the read that waits on the silent server
    hub.release()
    assert not pulling.is_alive()
    assert len(raised) == 1 and isinstance(raised[0], download.PullCancelled)
    assert "cancelled" in str(raised[0])
    kept = store.part_path(store.entry_paths(entry)[0]).stat().st_size
    assert kept >= 500_000
    result = download.pull(entry)
    assert result.resumed == kept and store.entry_paths(entry)[0].read_bytes() == data
