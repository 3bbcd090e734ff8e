"""A home whose disk is full or read-only, after r1chat saved a conversation there: what
was saved is still listed, shown, searched and continued; every write that fails says
which file and why in one line, leaves no temporary file, and loses nothing.

Real commands in subprocesses, on a tmpfs of their own (`tests.fixtures.disks`)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.fixtures.disks import Disk, small_disk
from tests.fixtures.scripted import ScriptedModel
from tests.fixtures.serve import serving


def r1chat(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "R1CHAT_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "r1chat", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(params=["full", "read-only"])
def disk(
    request: pytest.FixtureRequest, tmp_path: Path, answer_model: ScriptedModel
) -> Iterator[Disk]:
    with small_disk(tmp_path) as disk:
        saved = r1chat(
            disk.home, "ask", "-m", str(answer_model.path), "--threads", "1", "What is 2+2?"
        )
        assert saved.returncode == 0, saved.stderr
        disk.fill() if request.param == "full" else disk.read_only()
        yield disk


def test_saved_history_is_read_and_continued(disk: Disk, answer_model: ScriptedModel) -> None:
    listed = r1chat(disk.home, "history", "list")
    assert listed.returncode == 0, listed.stderr
    assert "What is 2+2?" in listed.stdout
    shown = r1chat(disk.home, "history", "show", "1")
    assert shown.returncode == 0 and answer_model.answer.splitlines()[0] in shown.stdout
    found = r1chat(disk.home, "history", "search", "arithmetic")
    assert found.returncode == 0 and "What is 2+2?" in found.stdout
    more = r1chat(disk.home, "ask", "-c", "--threads", "1", "And 3+3?")
    assert more.returncode == 0, more.stderr
    assert more.stdout == answer_model.answer + "\n"
    [warning] = [
        line for line in more.stderr.splitlines() if line.startswith("warning: this ask is not")
    ]
    assert warning.startswith("warning: this ask is not saved in the history: history ")
    assert "cannot be written: the " in warning  # the disk is full / the file system is read-only
    assert "Traceback" not in more.stderr


def test_a_config_that_cannot_be_written_is_one_line_and_no_litter(
    disk: Disk, answer_model: ScriptedModel
) -> None:
    out = r1chat(disk.home, "models", "default", str(answer_model.path))
    assert out.returncode == 1
    [line] = out.stderr.splitlines()
    why = "the disk is full" if (disk.mount / "filler").exists() else "read-only"
    assert line.startswith("error: cannot write the config ") and why in line, line
    assert disk.leftovers() == []


def test_serve_answers_from_a_home_it_cannot_write(disk: Disk, answer_model: ScriptedModel) -> None:
    with serving(answer_model.path, "--threads", "1", env={"R1CHAT_HOME": str(disk.home)}) as s:
        r = httpx2.post(
            f"{s.url}/chat/completions",
            json={"model": answer_model.path.stem, "messages": [{"role": "user", "content": "Hi"}]},
            timeout=120,
        )
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == answer_model.answer
        assert s.stop() == 0
