"""`ask` never dies silently: a crash inside llama.cpp (a signal the model process sends
itself through a seam, as a faulting kernel would) is one line and a non-zero exit, in a
pipe too; a full disk costs the log and the history, never the answer; a killed `ask`
leaves no worker behind."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from r1chat.config import paths
from r1chat.history.store import History
from tests.fixtures.cli import ROOT, one_error_line, r1chat
from tests.fixtures.disks import small_disk
from tests.fixtures.scripted import ScriptedModel


@pytest.mark.parametrize(
    ("signal", "what"), [("SIGSEGV", "a segmentation fault"), ("SIGILL", "an illegal instruction")]
)
def test_a_llama_cpp_crash_is_one_line_and_a_failure(
    answer_model: ScriptedModel, signal: str, what: str
) -> None:
    out = r1chat(
        "ask",
        "-m",
        str(answer_model.path),
        "--threads",
        "1",
        "What is 2+2?",
        seams=("--crash-in-prompt", signal),
    )
    assert out.returncode == 128 + {"SIGSEGV": 11, "SIGILL": 4}[signal]
    assert out.stdout == ""
    line = one_error_line(out.stderr)
    assert line.startswith(f"error: llama.cpp crashed ({signal}, {what}) while running ")
    assert f"llama.cpp's log: {paths.llama_log_file()}" in line and "try --no-repack" in line
    assert "Fatal Python error" in paths.llama_log_file().read_text()  # the stack, kept


def test_a_crash_in_a_pipe_is_said_and_fails_the_pipeline(answer_model: ScriptedModel) -> None:
    command = [
        sys.executable,
        "-m",
        "tests.fixtures.cli_seams",
        "--crash-in-prompt",
        "SIGSEGV",
        "--",
        "ask",
        "-m",
        str(answer_model.path),
        "--no-repack",
        "hi",
    ]
    script = f"set -o pipefail; {shlex.join(command)} | cat"
    out = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert out.returncode == 139
    line = one_error_line(out.stderr)
    assert "llama.cpp crashed (SIGSEGV" in line
    assert "--no-repack" not in line  # it was off already: not a thing to try


def test_ask_ends_with_its_reply_not_with_its_memory(answer_model: ScriptedModel) -> None:
    """ask returns, and a pipe reads its end, once the reply is out and saved and the
    model's lock let go: its process giving back the model's memory (slowed here to 60 s)
    delays neither, nor a `models rm` right after."""
    imported = r1chat("models", "import", str(answer_model.path), "--name", "ans", "--copy")
    assert imported.returncode == 0, imported.stderr
    out = r1chat(
        "ask", "-m", "ans", "--threads", "1", "What is 2+2?", seams=("--slow-exit", "60"),
        timeout=40,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout == answer_model.answer + "\n"
    history = History(paths.history_db())
    try:
        [conversation] = history.list_conversations()
        assert history.messages(conversation.id)[-1].content == answer_model.answer
    finally:
        history.close()
    removed = r1chat("models", "rm", "ans", "--yes")
    assert removed.returncode == 0, removed.stderr


def test_a_full_disk_never_stops_an_answer(tmp_path: Path, answer_model: ScriptedModel) -> None:
    with small_disk(tmp_path, size="2m") as disk:
        home = disk.home
        disk.fill()
        out = r1chat(
            "ask",
            "-m",
            str(answer_model.path),
            "--threads",
            "1",
            "What is 2+2?",
            env={"R1CHAT_HOME": str(home)},
        )
    assert out.returncode == 0, out.stderr
    assert out.stdout == answer_model.answer + "\n"
    warnings = out.stderr.splitlines()
    assert len(warnings) == 2, out.stderr
    assert warnings[0].startswith("warning: this ask is not saved in the history: ")
    assert warnings[1] == (
        f"warning: cannot write llama.cpp's log {home}/logs/llama.log: "
        "the disk is full (0 bytes free)"
    )


def test_a_killed_ask_leaves_nothing_running(loop_model: ScriptedModel) -> None:
    """`kill -9` of `ask` mid-reasoning: its worker ends too (it would reason on for
    minutes with a real model), saves the reply as stopped, and lets go of the model
    (which `models rm` leaves alone while it runs)."""
    imported = r1chat("models", "import", str(loop_model.path), "--name", "looping", "--copy")
    assert imported.returncode == 0, imported.stderr
    cmd = [sys.executable, "-m", "r1chat", "ask", "--jsonl", "-m", "looping"]
    cmd += ["--threads", "1", "--no-loop-guard", "--think-budget", "1000000", "Go on."]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert json.loads(proc.stdout.readline())["type"] == "reasoning"
    refused = r1chat("models", "rm", "looping", "--yes")
    assert "looping is in use" in one_error_line(refused.stderr)
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    assert children  # the worker that runs the model
    stdout = proc.stdout
    threading.Thread(target=stdout.read, daemon=True).start()  # (a terminal reads on)
    proc.kill()
    proc.wait(timeout=10)
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in children):
        assert time.monotonic() < deadline, "the worker outlived ask"
        time.sleep(0.1)
    history = History(paths.history_db())
    try:
        [conversation] = history.list_conversations()
        reply = history.messages(conversation.id)[-1]
        assert reply.finish_reason == "cancelled" and reply.reasoning
    finally:
        history.close()
    assert r1chat("models", "rm", "looping", "--yes").returncode == 0
