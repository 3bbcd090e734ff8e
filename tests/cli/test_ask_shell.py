"""`r1chat ask` as a shell tool: logged in the history, continued with -c, fed files with
-f, streamed as JSON lines, reasoning saved to a file, shell completion.

Real llama.cpp on the scripted models, real SQLite, the real command in a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from r1chat.config import paths
from r1chat.history.store import History
from tests.cli.test_ask import ask, ask_json
from tests.fixtures.scripted import ScriptedModel


def conversations() -> list:
    if not paths.history_db().exists():
        return []
    with History() as h:
        return h.list_conversations()


def r1chat(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "r1chat", *args], capture_output=True, text=True, timeout=60
    )


# -- logging ------------------------------------------------------------------------------


def test_an_ask_is_logged_with_its_reply_and_found_by_search(answer_model: ScriptedModel):
    proc = ask("-m", str(answer_model.path), "What is 2+2?")
    assert proc.returncode == 0, proc.stderr
    [c] = conversations()
    assert (c.source, c.title, c.turns) == ("ask", "What is 2+2?", 1)
    with History() as h:
        prompt, reply = h.messages(c.id)
    assert (prompt.role, prompt.content) == ("user", "What is 2+2?")
    assert reply.content == answer_model.answer
    assert reply.reasoning == answer_model.reasoning.strip()
    assert reply.finish_reason == "stop" and reply.stats is not None
    assert reply.stats["answer_tokens"] > 0
    assert reply.sampling is not None and reply.sampling["model"] == str(answer_model.path)
    hits = json.loads(r1chat("history", "search", "--json", "checked").stdout)
    assert [h["conversation_id"] for h in hits] == [c.id]
    listing = json.loads(r1chat("history", "list", "--json").stdout)
    assert listing[0]["source"] == "ask"


def test_no_log_and_the_config_switch_leave_no_row(answer_model: ScriptedModel):
    assert ask("-m", str(answer_model.path), "--no-log", "Hi").returncode == 0
    assert conversations() == []
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text("[ask]\nlog = false\n")
    assert ask("-m", str(answer_model.path), "Hi").returncode == 0
    assert conversations() == []


def test_a_refused_prompt_leaves_no_turn_behind(answer_model: ScriptedModel):
    proc = ask("-m", str(answer_model.path), "--ctx", "64", "word " * 200)
    assert proc.returncode == 1 and "context holds" in proc.stderr
    assert conversations() == []


def test_two_asks_logging_at_once(answer_model: ScriptedModel):
    cmd = [sys.executable, "-m", "r1chat", "ask", "-m", str(answer_model.path)]
    procs = [
        subprocess.Popen(
            [*cmd, f"question {i}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert (out, err) == (answer_model.answer + "\n", "")  # saved: no warning
    found = conversations()
    assert sorted(c.title for c in found) == ["question 0", "question 1"]
    with History() as h:
        for c in found:
            assert [m.content for m in h.messages(c.id)][1] == answer_model.answer


# -- continuing ---------------------------------------------------------------------------


def test_continue_sends_earlier_turns_without_reasoning_and_keeps_the_model(
    answer_model: ScriptedModel,
):
    assert ask("-m", str(answer_model.path), "first question").returncode == 0
    out = ask_json("-c", "--dry-run", "and in Python?")  # no -m: the conversation's model
    prompt = out["prompt"]
    assert "first question" in prompt and answer_model.answer in prompt
    assert answer_model.reasoning.strip().splitlines()[0] not in prompt
    assert prompt.index("first question") < prompt.index("and in Python?")
    assert "Scripted" in out["model"]
    proc = ask("-c", "and in Python?")
    assert proc.returncode == 0, proc.stderr
    [c] = conversations()
    assert c.turns == 2
    with History() as h:
        assert [m.role for m in h.messages(c.id)] == ["user", "assistant"] * 2


def test_conversation_id_picks_that_one(answer_model: ScriptedModel):
    for prompt in ("about apples", "about pears"):
        assert ask("-m", str(answer_model.path), prompt).returncode == 0
    apples = next(c.id for c in conversations() if c.title == "about apples")
    prompt = ask_json("--conversation", str(apples), "--dry-run", "more?")["prompt"]
    assert "about apples" in prompt and "about pears" not in prompt
    proc = ask("--conversation", "999", "more?")
    assert proc.returncode == 1 and proc.stderr == "error: no conversation 999\n"


def test_continue_with_nothing_saved_is_one_line(answer_model: ScriptedModel):
    proc = ask("-m", str(answer_model.path), "-c", "hi")
    assert proc.returncode == 2 and proc.stderr.startswith("error: -c: there is no saved")


# -- files --------------------------------------------------------------------------------


def test_files_become_named_fenced_blocks_before_the_question(
    answer_model: ScriptedModel, tmp_path: Path
):
    (tmp_path / "a.py").write_text("print('hi')\n")
    (tmp_path / "notes.md").write_text("has ``` fences\n")
    out = ask_json(
        "-m",
        str(answer_model.path),
        "--dry-run",
        "-f",
        str(tmp_path / "a.py"),
        "-f",
        str(tmp_path / "notes.md"),
        "Explain.",
    )
    prompt = out["prompt"]
    a = f"{tmp_path / 'a.py'}:\n```python\nprint('hi')\n```"
    md = f"{tmp_path / 'notes.md'}:\n````markdown\nhas ``` fences\n````"
    assert a in prompt and md in prompt
    assert prompt.index(a) < prompt.index(md) < prompt.index("Explain.")


def test_stdin_as_a_file(answer_model: ScriptedModel):
    out = ask_json(
        "-m", str(answer_model.path), "--dry-run", "-f", "-", "Sum up.", stdin="piped text\n"
    )
    assert "stdin:\n```\npiped text\n```\n\nSum up." in out["prompt"]


def test_binary_missing_and_oversized_files_are_refused_by_name(
    answer_model: ScriptedModel, tmp_path: Path
):
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x7fELF\x00\x01\x02")
    proc = ask("-m", str(answer_model.path), "-f", str(binary), "what?")
    assert proc.returncode == 2
    assert proc.stderr == f"error: -f {binary}: binary data (text files and PDFs only)\n"
    proc = ask("-m", str(answer_model.path), "-f", str(tmp_path / "nope.txt"), "what?")
    assert (
        proc.returncode == 2 and proc.stderr == f"error: -f {tmp_path / 'nope.txt'}: no such file\n"
    )
    big = tmp_path / "big.txt"
    big.write_text("lorem ipsum dolor sit amet\n" * 400)
    small = tmp_path / "small.txt"
    small.write_text("tiny\n")
    proc = ask("-m", str(answer_model.path), "--ctx", "512", "-f", str(small), "-f", str(big), "?")
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert line.startswith(f"error: the files do not fit the context: {big} (")
    assert "the context holds 512 (raise --ctx or pass less)" in line and "\n" not in line
    assert conversations() == []


# -- streaming events ---------------------------------------------------------------------


def test_jsonl_streams_each_event_as_it_happens(long_model: ScriptedModel):
    cmd = [
        sys.executable,
        "-m",
        "r1chat",
        "ask",
        "--jsonl",
        "-m",
        str(long_model.path),
        "--ctx",
        "8192",
        "--threads",
        "1",
        "--no-log",
        "Explain the plan.",
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())
    still_running = proc.poll() is None  # the first reasoning line came before the end
    rest = [json.loads(line) for line in proc.stdout]
    assert proc.wait(timeout=120) == 0
    assert first["type"] == "reasoning" and still_running
    events = [first, *rest]
    kinds = [e["type"] for e in events]
    done = events[-1]
    assert kinds[-1] == "done" and kinds.count("done") == 1
    end = kinds.index("reasoning_done")
    assert set(kinds[:end]) == {"reasoning"} and set(kinds[end + 1 : -1]) == {"answer"}
    assert (
        "".join(e["text"] for e in events if e["type"] == "reasoning") == done["reasoning_content"]
    )
    assert "".join(e["text"] for e in events if e["type"] == "answer") == done["content"]
    fields = {"model", "reasoning_content", "content", "finish_reason", "boxed", "notices", "stats"}
    assert set(done) == {"type"} | fields
    assert events[end]["tokens"] == done["stats"]["thinking_tokens"]


def test_thinking_file_gets_the_reasoning_while_stdout_stays_the_answer(
    answer_model: ScriptedModel, tmp_path: Path
):
    path = tmp_path / "why.txt"
    proc = ask("-m", str(answer_model.path), "--thinking-file", str(path), "What is 2+2?")
    assert proc.returncode == 0
    assert proc.stdout == answer_model.answer + "\n"
    assert path.read_text() == answer_model.reasoning.strip() + "\n"
    proc = ask("-m", str(answer_model.path), "--thinking-file", str(tmp_path / "no" / "x"), "hi")
    assert proc.returncode == 2 and proc.stderr.startswith("error: --thinking-file ")


# -- completion ---------------------------------------------------------------------------


def complete(words: list[str], shell_script: str) -> list[str]:
    """Run the bash completion function for `words` (the last one being completed)."""
    bin_dir = str(Path(sys.executable).parent)
    script = shell_script + (
        f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}; "
        '_r1chat; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    proc = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completion_knows_commands_options_and_model_names():
    script = r1chat("completion", "bash").stdout
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    assert "ask" in complete(["r1chat", "a"], script)
    assert {"--jsonl", "--json"} <= set(complete(["r1chat", "ask", "--js"], script))
    assert "r1:1.5b" in complete(["r1chat", "ask", "-m", "r1:1"], script)
    assert "r1:14b" in complete(["r1chat", "models", "pull", "r1:14"], script)
    assert complete(["r1chat", "ask", "--thinking", "s"], script) == ["show", "stderr"]
    assert "pull" in complete(["r1chat", "models", "p"], script)


def test_zsh_and_fish_scripts():
    zsh = r1chat("completion", "zsh").stdout
    assert "bashcompinit" in zsh and "complete -o default -F _r1chat r1chat" in zsh
    fish = r1chat("completion", "fish").stdout
    assert "complete -c r1chat -n '__fish_seen_subcommand_from ask' -l jsonl" in fish
    assert "(r1chat completion --models" in fish
    assert r1chat("completion").returncode == 2


def test_jsonl_flushes_every_event() -> None:
    """Each line is on its way before the next event (a pipe would otherwise hold ~8 KB)."""
    import io

    from r1chat.cli.ask_output import JsonlOutput
    from r1chat.core.events import AnswerDelta, Done, ThinkingDelta, ThinkingDone

    flushed: list[str] = []

    class Stream(io.StringIO):
        def flush(self) -> None:
            flushed.append(self.getvalue())

    out = Stream()
    jsonl = JsonlOutput(out)
    events = [ThinkingDelta("hm"), ThinkingDone(0.5, 1), AnswerDelta("4")]
    for e in events:
        jsonl.event(e)
    jsonl.finish(Done("hm", "4", "stop"), "m")
    assert [len(v.splitlines()) for v in flushed] == [1, 2, 3, 4]


def test_a_broken_history_is_one_warning_and_the_answer_still_comes(
    answer_model: ScriptedModel,
):
    db = paths.history_db()
    db.parent.mkdir(parents=True, exist_ok=True)
    db.write_bytes(b"not a database, " * 100)
    proc = ask("-m", str(answer_model.path), "What is 2+2?")
    assert proc.returncode == 0
    assert proc.stdout == answer_model.answer + "\n"
    assert proc.stderr.startswith("warning: this ask is not saved in the history: ")
    assert proc.stderr.count("\n") == 1
    assert db.read_bytes() == b"not a database, " * 100  # never touched


def test_closed_standard_streams_are_one_line_not_a_traceback(answer_model: ScriptedModel):
    cmd = [sys.executable, "-m", "r1chat", "ask", "-m", str(answer_model.path), "hi"]
    closed_out = subprocess.run(
        cmd, stderr=subprocess.PIPE, text=True, timeout=60, preexec_fn=lambda: os.close(1)
    )
    assert closed_out.returncode == 1
    assert closed_out.stderr == "error: standard output is closed (>&-): nothing could be written\n"
    closed_err = subprocess.run(
        cmd, stdout=subprocess.PIPE, text=True, timeout=60, preexec_fn=lambda: os.close(2)
    )
    assert closed_err.returncode == 0 and closed_err.stdout.strip() == answer_model.answer
