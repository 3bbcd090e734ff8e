"""`r1chat history ...` run as a real process against a real SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from r1chat.history.store import History

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def db(home: Path) -> Path:
    return home / "data" / "history.sqlite3"


@pytest.fixture
def ids(db: Path) -> dict[str, int]:
    """Two conversations: a two-turn maths chat and a short one about pelicans."""
    with History(db) as h:
        maths = h.new_conversation(model="r1:7b")
        h.add_message(maths, "user", "What is 2+2?")
        reply = h.add_message(maths, "assistant", "", model="r1:7b", sampling={"temperature": 0.6})
        h.update_message(
            reply,
            reasoning="Two plus two.\nThat makes four.",
            content="The answer is **4**.",
            stats={"thinking_s": 12.34, "thinking_tokens": 402},
            finish_reason="stop",
        )
        h.add_message(maths, "user", "And 3+3?")
        cut = h.add_message(maths, "assistant", "6", reasoning="Three and three.", model="r1:7b")
        h.update_message(cut, finish_reason="length")
        birds = h.new_conversation(model="r1:1.5b")
        h.add_message(birds, "user", "How do pelicans fly?")
        h.add_message(birds, "assistant", "They soar on thermals.", model="r1:1.5b")
    return {"maths": maths, "birds": birds}


def r1chat(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "R1CHAT_HOME": str(home),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "NO_COLOR": "1",
    }
    env.pop("R1CHAT_MODELS", None)
    return subprocess.run(
        [sys.executable, "-m", "r1chat", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def on_terminal(home: Path, *args: str, answer: bytes = b"") -> tuple[int, str]:
    """Run `r1chat ARGS` with stdin and stdout on a pseudo-terminal, typing `answer`."""
    import pty
    import time

    leader, follower = pty.openpty()
    env = {
        **os.environ,
        "R1CHAT_HOME": str(home),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "COLUMNS": "100",
        "TERM": "xterm-256color",
    }
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "r1chat", *args],
        env=env,
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    chunks: list[bytes] = []
    sent = not answer
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not sent and b"[y/N]" in b"".join(chunks):
            os.write(leader, answer)
            sent = True
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO once the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return proc.wait(timeout=60), b"".join(chunks).decode(errors="replace")


def test_list(home: Path, ids: dict[str, int]) -> None:
    out = ok(r1chat(home, "history", "list"))
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "UPDATED", "TURNS", "FROM", "MODEL", "TITLE"]
    birds, maths = lines[1], lines[2]  # newest first
    assert birds.split()[0] == str(ids["birds"]) and birds.endswith("How do pelicans fly?")
    assert maths.split()[0] == str(ids["maths"]) and maths.endswith("What is 2+2?")
    assert maths.split()[3:6] == ["2", "chat", "r1:7b"]  # turns, from, model
    assert "\x1b[" not in out  # plain when piped
    assert ok(r1chat(home, "history")) == out  # no action means list


def test_list_json(home: Path, ids: dict[str, int]) -> None:
    data = json.loads(ok(r1chat(home, "history", "list", "--json")))
    assert [c["id"] for c in data] == [ids["birds"], ids["maths"]]
    assert data[1] | {"created_at": None, "updated_at": None} == {
        "id": ids["maths"],
        "title": "What is 2+2?",
        "model": "r1:7b",
        "turns": 2,
        "source": "chat",
        "created_at": None,
        "updated_at": None,
    }
    assert (
        json.loads(ok(r1chat(home, "history", "list", "--json", "-n", "1")))[0]["id"]
        == (ids["birds"])
    )


def test_list_empty(home: Path) -> None:
    result = r1chat(home, "history", "list")
    assert ok(result) == "" and "no saved conversations" in result.stderr
    assert json.loads(ok(r1chat(home, "history", "list", "--json"))) == []


def test_show(home: Path, ids: dict[str, int]) -> None:
    out = ok(r1chat(home, "history", "show", str(ids["maths"])))
    assert out.startswith(f"#{ids['maths']} What is 2+2?\n")
    assert "Thought for 12.3s · 402 tokens:\n> Two plus two.\n> That makes four.\n\n" in out
    assert "> Three and three.\n\n6\n(Cut: the token limit (max tokens or the context) " in out
    assert out.index("## You") < out.index("> Two plus two.") < out.index("The answer is **4**.")
    assert "And 3+3?" in out and "> Three and three." in out
    assert "\x1b[" not in out


def test_show_json(home: Path, ids: dict[str, int]) -> None:
    data = json.loads(ok(r1chat(home, "history", "show", str(ids["maths"]), "--json")))
    assert data["id"] == ids["maths"]
    assert [m["role"] for m in data["messages"]] == ["user", "assistant"] * 2
    assert data["messages"][1]["stats"] == {"thinking_s": 12.34, "thinking_tokens": 402}


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_show_on_a_terminal_dims_the_reasoning(home: Path, ids: dict[str, int]) -> None:
    code, out = on_terminal(home, "history", "show", str(ids["maths"]))
    assert code == 0, out
    assert "\x1b[2mTwo plus two." in out  # reasoning dimmed
    assert "What is 2+2?" in out and "\x1b[1m4\x1b[0m" in out  # answer rendered as Markdown


def test_export_markdown(home: Path, ids: dict[str, int]) -> None:
    md = ok(r1chat(home, "history", "export", str(ids["maths"]), "--format", "md"))
    assert md.startswith("# What is 2+2?\n")
    assert "<details><summary>Thought for 12.3s · 402 tokens</summary>\n\nTwo plus two." in md
    assert md.index("</details>") < md.index("The answer is **4**.")
    assert ok(r1chat(home, "history", "export", str(ids["maths"]))) == md  # md is the default


def test_export_json_to_file(home: Path, ids: dict[str, int], tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    result = r1chat(
        home, "history", "export", str(ids["birds"]), "--format", "json", "-o", str(target)
    )
    assert ok(result) == "" and str(target) in result.stderr
    data = json.loads(target.read_text(encoding="utf-8"))
    assert data["title"] == "How do pelicans fly?"
    assert data["messages"][1]["content"] == "They soar on thermals."
    out = ok(r1chat(home, "history", "export", str(ids["birds"]), "--format", "json"))
    assert json.loads(out) == data


def test_export_to_unwritable_file(home: Path, ids: dict[str, int], tmp_path: Path) -> None:
    result = r1chat(home, "history", "export", "1", "-o", str(tmp_path / "no" / "such" / "x.md"))
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot write ") and "Traceback" not in result.stderr


def test_rm(home: Path, ids: dict[str, int], db: Path) -> None:
    refused = r1chat(home, "history", "rm", str(ids["maths"]))
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: refusing to delete") and "--yes" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert ok(r1chat(home, "history", "rm", str(ids["maths"]), "--yes")) == (
        f"deleted conversation {ids['maths']}\n"
    )
    with History(db) as h:
        assert [c.id for c in h.list_conversations()] == [ids["birds"]]
        assert h.search("plus") == []


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_rm_asks_on_a_terminal(home: Path, ids: dict[str, int], db: Path) -> None:
    code, out = on_terminal(home, "history", "rm", str(ids["birds"]), answer=b"n\n")
    assert code == 1 and "How do pelicans fly?" in out and "not deleted" in out
    with History(db) as h:
        assert len(h.list_conversations()) == 2
    code, out = on_terminal(home, "history", "rm", str(ids["birds"]), answer=b"y\n")
    assert code == 0 and f"deleted conversation {ids['birds']}" in out
    with History(db) as h:
        assert [c.id for c in h.list_conversations()] == [ids["maths"]]


def test_search(home: Path, ids: dict[str, int]) -> None:
    out = ok(r1chat(home, "history", "search", "makes", "four"))
    (line,) = out.splitlines()
    assert line.split()[:2] == [str(ids["maths"]), "assistant"]
    assert "What is 2+2?" in line and "[makes] [four]" in line
    hits = json.loads(ok(r1chat(home, "history", "search", "pelicans", "--json")))
    assert [(h["conversation_id"], h["role"]) for h in hits] == [(ids["birds"], "user")]
    assert hits[0]["snippet"] == "How do [pelicans] fly?"


@pytest.mark.parametrize("query", ['foo"bar', "NOT OR", "*", "NEAR(", "-x", ":", "'"])
def test_search_odd_text(home: Path, ids: dict[str, int], query: str) -> None:
    result = r1chat(home, "history", "search", "--", query)
    assert ok(result) == "" and "no matches" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["show", "42"],
        ["show", "42", "--json"],
        ["export", "42"],
        ["export", "42", "--format", "json"],
        ["rm", "42", "--yes"],
        ["rm", "42"],
    ],
)
def test_unknown_id(home: Path, ids: dict[str, int], args: list[str]) -> None:
    result = r1chat(home, "history", *args)
    assert result.returncode == 1
    assert result.stderr == "error: no conversation 42\n"
    assert result.stdout == ""


def test_a_history_that_is_no_database_is_named_and_moved_aside_never_deleted(
    home: Path,
) -> None:
    db = home / "data" / "history.sqlite3"
    assert ok(r1chat(home, "history", "recover")).startswith("no history file yet")
    assert not db.exists()  # recovering did not create one
    db.parent.mkdir(parents=True, exist_ok=True)
    db.write_bytes(b"not a database, but someone's data " * 100)
    out = r1chat(home, "history")
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr == (
        f"error: the history file {db} is damaged (file is not a database); `r1chat history "
        "recover` copies what it still holds into a new one (the damaged file is kept as "
        "history.sqlite3.corrupt-DATE)\n"
    )
    moved = ok(r1chat(home, "history", "recover"))
    [aside] = db.parent.glob("history.sqlite3.corrupt-*")
    assert moved == f"nothing could be read from the damaged history (kept as {aside})\n"
    assert aside.read_bytes() == b"not a database, but someone's data " * 100
    fresh = r1chat(home, "history")
    assert fresh.returncode == 0 and fresh.stderr == "no saved conversations\n"
    whole = ok(r1chat(home, "history", "recover"))
    assert whole.endswith("is whole (every page checked); nothing to recover\n")
