"""`r1chat models ...` and `r1chat doctor` as a user runs them: subprocesses against a
loopback hub (HF_ENDPOINT), with R1CHAT_HOME in a temp dir."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.hub_server import FakeHub, make_gguf_bytes

ROOT = Path(__file__).resolve().parents[2]
REPO = "bartowski/DeepSeek-R1-Distill-Qwen-1.5B-GGUF"
FILE = "DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf"
SIZE = 4_000_000


@pytest.fixture
def data() -> bytes:
    return make_gguf_bytes(SIZE, seed=7)


def r1(
    env: dict[str, str], *args: str, timeout: float = 60, seams: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """`r1chat ARGS` in a subprocess; `seams` replace machine facts (tests.fixtures.cli_seams)."""
    command = ["-m", "tests.fixtures.cli_seams", *seams, "--"] if seams else ["-m", "r1chat"]
    return subprocess.run(
        [sys.executable, *command, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def spawn(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "r1chat", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def model_path(env: dict[str, str]) -> Path:
    return Path(env["R1CHAT_HOME"]) / "data" / "models" / REPO / FILE


def part_of(path: Path) -> Path:
    return path.with_name(path.name + ".part")


def wait_for_part(path: Path, at_least: int, proc: subprocess.Popen[str]) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if part_of(path).exists() and part_of(path).stat().st_size >= at_least:
            return part_of(path).stat().st_size
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("the download did not start")


def one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# -- listing and info ------------------------------------------------------------------------


def test_list_shows_catalog_fit_and_install_state(env: dict[str, str]) -> None:
    out = r1(env, "models")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("RAM ")
    # with nothing installed the default is what doctor recommends: one recommendation
    assert any(ln.split()[:2] == ["*", recommended(env)] for ln in lines)
    for name in ("r1:1.5b", "r1:7b-q8_0", "r1:8b", "r1:14b", "r1:32b", "r1:70b-q8_0"):
        row = next(ln for ln in lines if ln.split() and ln.lstrip("* ").split()[0] == name)
        assert any(v in row for v in ("fits on GPU", "partial offload", "CPU only", "won't fit"))
    assert "remote only" in next(ln for ln in lines if "r1:671b" in ln)
    assert r1(env, "models", "list", "--ctx", "4096").stdout.splitlines()[0].endswith("4,096")


def test_list_json(env: dict[str, str]) -> None:
    out = r1(env, "models", "--json", "--ctx", "16384")
    data = json.loads(out.stdout)
    assert data["context"] == 16384 and data["default"] == recommended(env)
    r7 = next(m for m in data["models"] if m["name"] == "r1:7b")
    assert r7["size"] == 4_683_075_271 and not r7["installed"]
    assert r7["fit"]["memory"] == 4_683_075_271 + 57_344 * 16384 + (512 << 20)


def test_models_and_info_do_not_load_llama_cpp(env: dict[str, str]) -> None:
    """What keeps them quick (the figures are in bench/responsiveness.py): neither loads
    llama.cpp nor Textual."""
    for args in (["models"], ["models", "info", "r1:7b"]):
        code = (
            "import sys; from r1chat.__main__ import main; code = main(sys.argv[1:]); "
            "print(sorted(m for m in ('llama_cpp', 'textual') if m in sys.modules)); "
            "raise SystemExit(code)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines()[-1] == "[]", args


def test_info_counts_a_kv_cache_for_every_reply_at_once(env: dict[str, str]) -> None:
    one = json.loads(r1(env, "models", "info", "r1:7b", "--json").stdout)
    four = json.loads(r1(env, "models", "info", "r1:7b", "--json", "--parallel", "4").stdout)
    assert four["slots"] == 4 and one["slots"] == 1
    assert four["fit"]["8192"]["kv_cache"] == 4 * one["fit"]["8192"]["kv_cache"]
    assert "4 replies at once" in r1(env, "models", "info", "r1:7b", "--parallel", "4").stdout
    bad = r1(env, "models", "info", "r1:7b", "--parallel", "0")
    assert bad.returncode == 2 and "--parallel must be at least 1" in bad.stderr


def test_info_has_every_field_and_fits_at_several_contexts(env: dict[str, str]) -> None:
    out = r1(env, "models", "info", "r1:14b-q8_0")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for needle in (
        "DeepSeek-R1-Distill-Qwen-14B",
        "Q8_0",
        "bartowski/DeepSeek-R1-Distill-Qwen-14B",
        "48 layers",
        "8 KV heads",
        "197 kB per token",  # one unit family (kB, MB, GB) everywhere
        "131,072",
        "MIT",
        "not installed; run: r1chat models pull r1:14b-q8_0",
        "4,096",
        "131,072",
    ):
        assert needle in text, needle
    data = json.loads(r1(env, "models", "info", "r1:14b", "--json").stdout)
    assert data["kv_bytes_per_token"] == 196_608 and set(data["fit"]) >= {"4096", "131072"}
    assert "KiB" not in text and "MiB" not in text
    remote = r1(env, "models", "info", "r1:671b")
    assert remote.returncode == 0 and "remote server" in remote.stdout


def test_path_of_a_model_that_is_not_installed(env: dict[str, str]) -> None:
    out = r1(env, "models", "path", "r1:7b")
    assert out.returncode == 1
    assert one_error_line(out.stderr) == (
        "error: model r1:7b is not installed; run: r1chat models pull r1:7b (or use a GGUF "
        "you have: r1chat models import FILE)"
    )


def recommended(env: dict[str, str]) -> str:
    """The model `r1chat doctor` recommends for this machine."""
    out = r1(env, "doctor", "--json", "--no-self-test")
    return str(json.loads(out.stdout)["recommended"]["name"])


def test_a_bad_user_catalog_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[models."x:1b"]\nrepo = "a/b"\nlayers = 1\nkv_heads = 1\nhead_dim = 1\n'
        'context = 1\n[models."x:1b".quants.Q4_K_M]\nfile = "x.gguf"\nsize = -5\n'
    )
    out = r1({**env, "R1CHAT_CATALOG": str(bad)}, "models")
    assert out.returncode == 1
    assert one_error_line(out.stderr) == (
        f"error: catalog {bad}: entry 'x:1b' quant Q4_K_M: negative size -5"
    )
    bad.write_text("[models\n")
    line = one_error_line(r1(env, "models", "--catalog", str(bad)).stderr)
    assert line.startswith(f"error: catalog {bad}: bad TOML: ")


# -- pull ---------------------------------------------------------------------------------------


def test_pull_with_progress_then_path_info_rm(
    env: dict[str, str], hub: FakeHub, data: bytes
) -> None:
    hub.add(REPO, FILE, data)
    out = r1(env, "models", "pull", "r1:1.5b")
    assert out.returncode == 0, out.stderr
    path = model_path(env)
    assert path.read_bytes() == data
    assert f"pulled r1:1.5b: {path}" in out.stdout and "sha256 verified" in out.stdout
    progress = out.stderr.splitlines()
    assert progress[0].startswith(f"r1:1.5b: downloading {FILE} [1/1] 0%")
    assert any(ln.startswith("r1:1.5b: verifying") for ln in progress)
    assert progress[-1].startswith(f"r1:1.5b: done {FILE} [1/1] 100% 4.0 MB/4.0 MB")

    assert r1(env, "models", "path", "r1:1.5b").stdout.strip() == str(path)
    assert "installed" in r1(env, "models", "info", "r1:1.5b").stdout
    assert "already installed" in r1(env, "models", "pull", "r1:1.5b").stdout
    listed = r1(env, "models").stdout
    assert "installed" in next(ln for ln in listed.splitlines() if " r1:1.5b " in ln + " ")

    refused = r1(env, "models", "rm", "r1:1.5b")
    assert refused.returncode == 2 and "add --yes" in one_error_line(refused.stderr)
    assert path.exists()
    out = r1(env, "models", "rm", "r1:1.5b", "--yes")
    assert out.returncode == 0 and "freed 4.0 MB" in out.stdout and not path.exists()


def test_resume_after_the_server_drops_the_connection(
    env: dict[str, str], hub: FakeHub, data: bytes
) -> None:
    hub.add(REPO, FILE, data)
    hub.drop_after(FILE, 1_500_000, times=1)
    out = r1(env, "models", "pull", "r1:1.5b", seams=("--retries", "-1"))
    assert out.returncode == 1
    line = one_error_line(out.stderr)
    assert "interrupted" in line and "run `r1chat models pull r1:1.5b` again to resume" in line
    assert locks_left(env) == []  # a failed pull leaves its .part, not its lock
    kept = part_of(model_path(env)).stat().st_size
    assert 0 < kept <= 1_500_000
    out = r1(env, "models", "pull", "r1:1.5b")
    assert out.returncode == 0, out.stderr
    assert model_path(env).read_bytes() == data
    assert hub.gets(FILE)[-1].range == f"bytes={kept}-"
    assert "resumed after" in out.stdout


def test_resume_after_kill_9(env: dict[str, str], hub: FakeHub, data: bytes) -> None:
    hub.add(REPO, FILE, data)
    hub.hold(FILE, 1_500_000)  # the body stops mid-file until the kill
    proc = spawn(env, "models", "pull", "r1:1.5b")
    wait_for_part(model_path(env), 600_000, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    hub.release()
    kept = part_of(model_path(env)).stat().st_size
    assert 0 < kept < SIZE and not model_path(env).exists()
    out = r1(env, "models", "pull", "r1:1.5b")
    assert out.returncode == 0, out.stderr
    assert model_path(env).read_bytes() == data
    assert hub.gets(FILE)[-1].range == f"bytes={kept}-"  # nothing re-downloaded


def test_ctrl_c_exits_130_and_keeps_the_partial_file(
    env: dict[str, str], hub: FakeHub, data: bytes
) -> None:
    hub.add(REPO, FILE, data)
    hub.hold(FILE, 1_500_000)  # the body stops mid-file until the Ctrl-C
    proc = spawn(env, "models", "pull", "r1:1.5b")
    wait_for_part(model_path(env), 400_000, proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=10)
    hub.release()
    assert proc.returncode == 130
    assert "interrupted" in stderr and "to resume" in stderr and "Traceback" not in stderr
    assert part_of(model_path(env)).stat().st_size > 0


def test_two_pulls_at_once_do_not_corrupt_the_file(
    env: dict[str, str], hub: FakeHub, data: bytes
) -> None:
    hub.add(REPO, FILE, data)
    hub.hold(FILE, 1_500_000)  # the first pull is mid-file while the second one tries
    first = spawn(env, "models", "pull", "r1:1.5b")
    wait_for_part(model_path(env), 1, first)
    second = r1(env, "models", "pull", "r1:1.5b")
    hub.release()
    assert second.returncode == 1
    assert "another r1chat is downloading r1:1.5b" in one_error_line(second.stderr)
    _, stderr = first.communicate(timeout=30)
    assert first.returncode == 0, stderr
    assert model_path(env).read_bytes() == data


def test_sha_mismatch_says_which_file_and_both_hashes(
    env: dict[str, str], hub: FakeHub, data: bytes
) -> None:
    wrong = hashlib.sha256(b"tampered").hexdigest()
    hub.add(REPO, FILE, data, sha256=wrong)
    out = r1(env, "models", "pull", "r1:1.5b")
    assert out.returncode == 1
    line = one_error_line(out.stderr)
    assert FILE in line and wrong in line and hashlib.sha256(data).hexdigest() in line
    folder = model_path(env).parent
    assert not any(p.name.startswith(FILE) for p in folder.iterdir())  # nothing half-verified


def test_404_is_readable(env: dict[str, str], hub: FakeHub, data: bytes) -> None:
    hub.add(REPO, "something-else.gguf", data)
    out = r1(env, "models", "pull", "r1:1.5b")
    assert out.returncode == 1
    assert one_error_line(out.stderr) == f"error: {FILE} not found in {REPO} (revision main)"


def test_401_gated_is_readable_and_a_token_opens_it(
    env: dict[str, str], hub: FakeHub, data: bytes
) -> None:
    hub.add(REPO, FILE, data)
    hub.gate(REPO, "hf_letmein")
    out = r1(env, "models", "pull", "r1:1.5b")
    assert out.returncode == 1
    line = one_error_line(out.stderr)
    assert f"{REPO} is gated" in line and "HF_TOKEN" in line
    out = r1({**env, "HF_TOKEN": "hf_letmein"}, "models", "pull", "r1:1.5b")
    assert out.returncode == 0, out.stderr
    assert model_path(env).read_bytes() == data


def test_disk_space_refusal(env: dict[str, str], hub: FakeHub, data: bytes) -> None:
    hub.add(REPO, FILE, data)
    out = r1(env, "models", "pull", "r1:1.5b", seams=("--free-bytes", "1000000"))
    assert out.returncode == 1
    assert "not enough disk space" in one_error_line(out.stderr)
    assert hub.gets(FILE) == []
    assert locks_left(env) == []


def test_a_hub_that_cannot_be_reached_is_one_line(env: dict[str, str]) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = r1({**env, "HF_ENDPOINT": f"http://127.0.0.1:{port}"}, "models", "pull", "r1:1.5b")
    assert out.returncode == 1
    assert one_error_line(out.stderr) == (
        f"error: cannot reach http://127.0.0.1:{port}: connection refused"
    )
    assert locks_left(env) == []


def locks_left(env: dict[str, str]) -> list[Path]:
    return sorted(Path(env["R1CHAT_HOME"]).rglob("*.lock"))


def test_remote_only_model_cannot_be_pulled(env: dict[str, str]) -> None:
    out = r1(env, "models", "pull", "r1:671b")
    assert out.returncode == 1 and "too big" in one_error_line(out.stderr)


def test_unknown_name(env: dict[str, str]) -> None:
    out = r1(env, "models", "pull", "r1:7bb")
    assert out.returncode == 1
    assert one_error_line(out.stderr) == (
        "error: unknown model 'r1:7bb'; did you mean r1:7b? (see: r1chat models)"
    )


# -- import, default, doctor ----------------------------------------------------------------


def test_an_import_that_cannot_be_saved_leaves_nothing(env: dict[str, str], tmp_path: Path) -> None:
    """The list of imports cannot be written (the disk filled up): one line, and the copy
    made for it is removed again."""
    from r1chat.models.gguf_writer import write_tiny_llama

    gguf = write_tiny_llama(tmp_path / "My-Tiny.gguf")
    models = Path(env["R1CHAT_HOME"]) / "data" / "models"
    for copy in ((), ("--copy",)):
        args = ("models", "import", str(gguf), "--name", "tiny", *copy)
        out = r1(env, *args, seams=("--index-disk-full",))
        assert out.returncode == 1
        assert one_error_line(out.stderr) == (
            "error: cannot import My-Tiny.gguf: No space left on device "
            f"({models / 'imported.json'})"
        )
        assert [p for p in models.rglob("*") if p.is_file()] == []
    assert gguf.exists()


def _writable(folder: Path) -> bool:
    try:
        (folder / ".probe").touch()
    except OSError:
        return False
    (folder / ".probe").unlink()
    return True


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` cannot be written to while inside: mode 555, and immutable (`chattr +i`)
    where the tests run as root, whom modes do not stop."""
    folder.chmod(0o555)
    immutable = False
    try:
        if _writable(folder):
            chattr = subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
            immutable = chattr.returncode == 0
            if _writable(folder):
                pytest.skip("cannot make a folder read-only here (root, and no chattr)")
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def test_import_into_a_read_only_models_folder(env: dict[str, str], tmp_path: Path) -> None:
    """Linked or copied: one line naming the folder, and nothing left behind."""
    from r1chat.models.gguf_writer import write_tiny_llama

    gguf = write_tiny_llama(tmp_path / "My-Tiny.gguf")
    models = Path(env["R1CHAT_HOME"]) / "data" / "models"
    models.mkdir(parents=True)
    with read_only(models):
        for copy in ((), ("--copy",)):
            out = r1(env, "models", "import", str(gguf), *copy)
            line = one_error_line(out.stderr)
            assert out.returncode == 1 and line.startswith("error: cannot import My-Tiny.gguf: ")
            assert line.endswith(f"({models / ('imported' if copy else 'imported.json')})")
            assert list(models.iterdir()) == []
    assert r1(env, "models", "path", "my-tiny").returncode != 0


def test_the_imported_table_labels_every_column(env: dict[str, str], tmp_path: Path) -> None:
    from r1chat.models.gguf_writer import write_tiny_llama

    gguf = write_tiny_llama(tmp_path / "My-Tiny.gguf")
    assert r1(env, "models", "import", str(gguf), "--name", "tiny").returncode == 0
    lines = r1(env, "models").stdout.splitlines()
    head = next(ln for ln in lines if ln.strip().startswith("IMPORTED"))
    row = next(ln for ln in lines if ln.lstrip("* ").startswith("tiny "))
    assert head.split() == ["IMPORTED", "PARAMS", "QUANT", "SIZE", "FIT", "PATH"]
    for column in ("PARAMS", "QUANT"):  # every value sits under its label
        assert row[head.index(column)] == "-"
    assert row.index("kB") < head.index("FIT") and row.index(str(gguf)) == head.index("PATH")


def test_import_path_default(env: dict[str, str], tmp_path: Path) -> None:
    from r1chat.models.gguf_writer import write_tiny_llama

    gguf = write_tiny_llama(tmp_path / "My-Tiny.gguf")
    out = r1(env, "models", "import", str(gguf), "--name", "tiny")
    assert out.returncode == 0, out.stderr
    assert r1(env, "models", "path", "tiny").stdout.strip() == str(gguf)
    info = r1(env, "models", "info", "tiny")
    assert info.returncode == 0 and "llama" in info.stdout and "fit on this machine" in info.stdout
    assert "tiny" in r1(env, "models").stdout
    out = r1(env, "models", "default", "tiny")
    assert out.returncode == 0 and r1(env, "models", "default").stdout.strip() == "tiny"
    out = r1(env, "models", "default", "r1:8b")
    assert "not installed yet" in out.stdout
    bad = r1(env, "models", "import", str(tmp_path / "nope.gguf"))
    assert bad.returncode == 1 and "no such file" in one_error_line(bad.stderr)


def test_doctor_runs_its_self_test(env: dict[str, str]) -> None:
    out = r1(env, "doctor", timeout=120)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for key in (
        "llama-cpp-python",
        "backend",
        "RAM",
        "GPU",
        "config",
        "models",
        "logs",
        "recommended",
        "repack",
        "self-test",
    ):
        assert any(ln.startswith(key) for ln in text.splitlines()), key
    assert "ok: tiny quantized GGUF (Q4_0, Q4_1, Q4_K, Q5_K, Q6_K, Q8_0) loaded" in text
    assert "llama_model_loader" not in text + out.stderr  # llama.cpp's log went to the file
    data = json.loads(r1(env, "doctor", "--json", "--no-self-test").stdout)
    assert data["problems"] == [] and "self_test" not in data
    assert data["paths"]["models"].startswith(env["R1CHAT_HOME"])


@pytest.mark.parametrize("args", [("models", "--json"), ("models",), ("models", "info", "r1:7b")])
def test_a_reader_that_went_away_is_not_an_error(env: dict[str, str], args: tuple[str, ...]):
    """`r1chat models --json | head -c 5`: the pipe closes under the writer."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write now fails with EPIPE
    try:
        out = subprocess.run(
            [sys.executable, "-m", "r1chat", *args],
            env=env,
            cwd=ROOT,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert out.returncode == 0 and out.stderr == ""
