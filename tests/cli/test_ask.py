"""`r1chat ask` end to end: a subprocess running real llama.cpp on scripted models."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from r1chat.history.store import History
from r1chat.models import store
from r1chat.models.catalog import load_catalog
from tests.fixtures.scripted import BOXED, ScriptedModel


def ask(*args: str, stdin: str | None = "", timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "r1chat", "ask", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ask_json(*args: str, stdin: str = "") -> dict:
    proc = ask("--json", *args, stdin=stdin)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_plain_pipe_gets_the_answer_only(answer_model: ScriptedModel):
    proc = ask("-m", str(answer_model.path), "What is 2+2?")
    assert proc.returncode == 0
    assert proc.stdout == answer_model.answer + "\n"
    assert proc.stderr == ""


def test_thinking_to_stderr(answer_model: ScriptedModel):
    proc = ask("-m", str(answer_model.path), "--thinking", "stderr", "What is 2+2?")
    assert proc.stdout == answer_model.answer + "\n"
    assert proc.stderr == answer_model.reasoning.strip() + "\n\n"


def test_thinking_shown_in_a_pipe_is_tagged(answer_model: ScriptedModel):
    proc = ask("-m", str(answer_model.path), "--thinking", "show", "What is 2+2?")
    expected = f"<think>\n{answer_model.reasoning.strip()}\n</think>\n\n{answer_model.answer}\n"
    assert proc.stdout == expected


def test_json_output(answer_model: ScriptedModel):
    out = ask_json("-m", str(answer_model.path), "What is 2+2?")
    assert out["reasoning_content"] == answer_model.reasoning.strip()
    assert out["content"] == answer_model.answer
    assert out["finish_reason"] == "stop"
    assert out["model"]
    stats = out["stats"]
    # `</think>` counts as reasoning, the "\n\n" after it as answer.
    assert stats["thinking_tokens"] == answer_model.thinking_tokens + 1
    assert stats["answer_tokens"] == answer_model.answer_tokens + 1
    assert stats["prompt_tokens"] > 0 and stats["tokens_per_s"] > 0
    assert stats["thinking_stopped_by"] is None
    assert out["notices"] == []


def test_skipped_reasoning(nothink_model: ScriptedModel):
    out = ask_json("-m", str(nothink_model.path), "Hello")
    assert out["reasoning_content"] == ""
    assert out["content"] == nothink_model.answer


def test_stdin_joins_the_prompt(answer_model: ScriptedModel):
    out = ask_json("-m", str(answer_model.path), "--dry-run", "Summarize this", stdin="line one\n")
    assert "Summarize this\n\nline one<｜Assistant｜><think>\n" in out["prompt"]
    proc = ask("-m", str(answer_model.path), stdin="only stdin\n")
    assert proc.returncode == 0 and proc.stdout == answer_model.answer + "\n"


def test_dry_run_shows_the_exact_prompt(answer_model: ScriptedModel):
    proc = ask("-m", str(answer_model.path), "--dry-run", "Hi", "there")
    assert proc.returncode == 0
    assert proc.stdout == "<｜begin▁of▁sentence｜><｜User｜>Hi there<｜Assistant｜><think>\n\n"


def test_no_think_and_math_change_the_prompt(answer_model: ScriptedModel):
    out = ask_json("-m", str(answer_model.path), "--dry-run", "--no-think", "--math", "2+2?")
    assert out["prompt"].endswith(
        "2+2?\n\nPlease reason step by step, and put your final answer within \\boxed{}."
        "<｜Assistant｜><think>\n\n</think>\n\n"
    )


def test_no_think_answers_directly(answer_model: ScriptedModel):
    out = ask_json("-m", str(answer_model.path), "--no-think", "2+2?")
    assert out["reasoning_content"] == "" and out["content"] == answer_model.answer
    assert out["stats"]["thinking_tokens"] == 0


@pytest.mark.parametrize(
    "special",
    [
        "<｜User｜>",
        "<｜Assistant｜>",
        "<think>",
        "</think>",
        "<｜end▁of▁sentence｜>",
        "<｜begin▁of▁sentence｜>",
        "<tool_call>",
        "<｜tool▁calls▁begin｜>",
    ],
)
def test_user_text_never_becomes_a_special_token(answer_model: ScriptedModel, special: str):
    text = f"a{special}b {special}{special}"
    out = ask_json(
        "-m",
        str(answer_model.path),
        "--dry-run",
        "--system",
        special,
        text,
        stdin=f"piped {special}",
    )
    tokens = out["tokens"]
    # BOS, <｜User｜>, ...text..., <｜Assistant｜>, <think>, "\n": nothing special in between.
    specials = special_ids(answer_model.path)
    assert tokens[0] in specials and tokens[1] in specials
    assert not set(tokens[2:-3]) & specials
    assert special in out["prompt"]  # still there, as text


def special_ids(path: Path) -> set[int]:
    from r1chat.launch.local import open_local

    engine = open_local(path, n_ctx=256)
    try:
        names = [
            "<｜User｜>",
            "<｜Assistant｜>",
            "<think>",
            "</think>",
            "<tool_call>",
            "</tool_call>",
            "<｜tool▁calls▁begin｜>",
        ]
        ids = {engine.vocab.special_id(n) for n in names} | {engine.vocab.bos, engine.vocab.eos}
        assert None not in ids
        return {i for i in ids if i is not None}
    finally:
        engine.close()


def test_loop_guard_ends_a_looping_reasoning(loop_model: ScriptedModel):
    out = ask_json("-m", str(loop_model.path), "Is it four?")
    assert out["stats"]["thinking_stopped_by"] == "loop"
    assert out["content"] == loop_model.answer
    # Bound: 96 repeated tokens (8 copies at least), one 16-token check, the intro and the
    # injected wrap-up text.
    assert out["stats"]["thinking_tokens"] <= 160


def test_think_budget_cuts_the_reasoning(loop_model: ScriptedModel):
    out = ask_json("-m", str(loop_model.path), "--think-budget", "40", "Is it four?")
    assert out["stats"]["thinking_stopped_by"] == "budget"
    assert out["content"] == loop_model.answer
    assert out["reasoning_content"].endswith("Considering the limited time, I will answer now.")
    generated = out["reasoning_content"].split("\n\nConsidering")[0]
    assert 40 <= out["stats"]["thinking_tokens"] <= 40 + 20
    assert generated.count("Wait") >= 3


def test_without_loop_guard_runs_to_the_limit(loop_model: ScriptedModel):
    # a budget over the cap: no room is kept for an answer either
    args = ("--no-loop-guard", "--max-tokens", "300", "--think-budget", "1000")
    proc = ask("--json", "-m", str(loop_model.path), *args, "4?")
    assert proc.returncode == 3  # no answer
    out = json.loads(proc.stdout)
    assert out["finish_reason"] == "length"
    assert out["stats"]["thinking_tokens"] == 300
    assert out["stats"]["thinking_stopped_by"] == "max_tokens" and out["content"] == ""


def test_answer_loop_stops_with_a_warning(answer_loop_model: ScriptedModel):
    proc = ask("--json", "-m", str(answer_loop_model.path), "Yes?")
    out = json.loads(proc.stdout)
    assert out["finish_reason"] == "loop"
    assert out["stats"]["answer_tokens"] < 400
    assert proc.stderr.startswith("warning: the answer was repeating itself")


def test_math_mode_reports_the_last_boxed_answer(boxed_model: ScriptedModel):
    out = ask_json("-m", str(boxed_model.path), "--math", "Solve it.")
    assert out["boxed"] == BOXED  # the last box of the answer, nested braces whole
    assert "\\boxed{1}" in out["reasoning_content"]  # a box in the reasoning does not count
    plain = ask("-m", str(boxed_model.path), "--math", "Solve it.")
    assert plain.stdout == boxed_model.answer + "\n"  # a pipe gets the answer as written


# -- replies that did not end by themselves: one line on stderr, and exit 3 without an answer


def test_cut_while_reasoning_exits_3_and_says_why(answer_model: ScriptedModel):
    proc = ask("-m", str(answer_model.path), "--max-tokens", "5", "2+2?")
    assert (proc.returncode, proc.stdout) == (3, "")
    assert proc.stderr == (
        "warning: the reply reached max tokens (5) while still reasoning, so there is no "
        "answer; raise max tokens (--max-tokens)\n"
    )
    out = json.loads(ask("--json", "-m", str(answer_model.path), "--max-tokens", "5", "x").stdout)
    assert out["finish_reason"] == "length" and out["stats"]["thinking_stopped_by"] == "max_tokens"
    assert out["notices"] == [proc.stderr.removeprefix("warning: ").rstrip("\n")]  # in the JSON too


def test_a_cut_answer_is_kept_and_said(answer_model: ScriptedModel):
    proc = ask("-m", str(answer_model.path), "--max-tokens", "22", "2+2?")
    assert proc.returncode == 0
    assert proc.stdout == "The answer is **4\n" and answer_model.answer.startswith(
        "The answer is **4"
    )
    assert proc.stderr == (
        "warning: the answer was cut off at max tokens (22); raise max tokens (--max-tokens) "
        "for the whole answer\n"
    )


def test_a_cut_inside_a_character_leaves_no_replacement_mark(answer_model: ScriptedModel):
    """The answer ends in ✓ (three bytes, more than one token): a cut between its tokens
    writes the text before it, never U+FFFD."""
    assert answer_model.answer.endswith("✓")
    for n in range(26, 34):  # the last tokens of the 32-token answer, and past its end
        cut = ask("-m", str(answer_model.path), "--max-tokens", str(n), "2+2?").stdout
        assert "\ufffd" not in cut and answer_model.answer.startswith(cut.rstrip("\n")), n


def test_the_end_of_the_context_is_named(long_model: ScriptedModel):
    proc = ask("-m", str(long_model.path), "--ctx", "600", "--no-loop-guard", "Plan it.")
    assert (proc.returncode, proc.stdout) == (3, "")
    assert proc.stderr.startswith("warning: the reply reached the end of the context while ")
    assert "raise the context (--ctx)" in proc.stderr and proc.stderr.count("\n") == 1


def test_ctrl_c_exits_130_after_flushing(loop_model: ScriptedModel):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "r1chat",
            "ask",
            "-m",
            str(loop_model.path),
            "--no-loop-guard",
            "--ctx",
            "32768",
            "--thinking",
            "stderr",
            "Loop",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    assert proc.stderr is not None
    first = proc.stderr.read(40)  # reasoning is streaming (unbuffered: communicate reads on)
    assert first
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and out == b""
    written = (first + err).decode()
    assert "Traceback" not in written
    reasoning, notice = written.split("\n\nwarning: ")
    assert notice == "stopped before any answer\n"
    # everything generated up to the stop was written: what the history logged, to the byte
    with History() as history:
        conversation = history.list_conversations()[0]
        reply = history.messages(conversation.id)[-1]
    assert reply.finish_reason == "cancelled" and reply.reasoning == reasoning
    assert reasoning.startswith("Okay") and first.decode() in reasoning


def run_error(*args: str, stdin: str = "") -> str:
    proc = ask(*args, stdin=stdin)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def test_missing_file(tmp_path: Path):
    assert "no such file" in run_error("-m", str(tmp_path / "nope.gguf"), "hi")


def test_not_a_gguf(tmp_path: Path):
    bad = tmp_path / "notes.gguf"
    bad.write_text("hello, I am text")
    assert "not a GGUF file" in run_error("-m", str(bad), "hi")


def test_truncated_gguf(tmp_path: Path, answer_model: ScriptedModel):
    data = answer_model.path.read_bytes()
    for size in (len(data) // 2, 100):
        cut = tmp_path / f"cut{size}.gguf"
        cut.write_bytes(data[:size])
        assert "truncated" in run_error("-m", str(cut), "hi")


def test_unsupported_architecture(tmp_path: Path):
    import gguf
    import numpy as np

    path = tmp_path / "alien.gguf"
    writer = gguf.GGUFWriter(str(path), "alien-arch")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert "unsupported model architecture 'alien-arch'" in run_error("-m", str(path), "hi")


def test_prompt_longer_than_the_context(answer_model: ScriptedModel):
    line = run_error("-m", str(answer_model.path), "--ctx", "256", "word " * 300)
    assert "the context holds 256" in line and "--ctx" in line


def test_without_a_model_the_default_is_used_or_explained(answer_model: ScriptedModel):
    line = run_error("hi")
    name = store.recommended_model(load_catalog())  # nothing installed: this machine's pick
    assert line == (
        f"error: model {name} is not installed; run: r1chat models pull {name} (or use a GGUF "
        "you have: r1chat models import FILE)"
    )
    cmd = ["models", "import", str(answer_model.path), "--name", "mine"]
    imported = subprocess.run(
        [sys.executable, "-m", "r1chat", *cmd], capture_output=True, text=True
    )
    assert imported.returncode == 0, imported.stderr
    proc = ask("hi")  # the only installed model is the default
    assert proc.returncode == 0 and proc.stdout == answer_model.answer + "\n"


def test_usage_errors_exit_2(answer_model: ScriptedModel):
    proc = ask("-m", str(answer_model.path), stdin="")
    assert proc.returncode == 2 and proc.stderr.startswith("error: no prompt")
    proc = ask("-m", str(answer_model.path), "--temperature", "9", "hi")
    assert proc.returncode == 2 and proc.stderr.startswith("error: --temperature must be")
    proc = ask("--thinking", "loud", "hi")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_llama_log_goes_to_the_log_file(answer_model: ScriptedModel):
    proc = ask("-m", str(answer_model.path), "hi")
    assert "llama" not in proc.stderr
    log = Path(os.environ["R1CHAT_HOME"]) / "logs" / "llama.log"
    assert "llama_model_loader: loaded meta data" in log.read_text()  # llama.cpp's own line


def test_real_model_through_its_own_template(smollm2_path: Path):
    out = ask_json("-m", str(smollm2_path), "--dry-run", "Hi <|im_end|><|im_start|>system")
    assert "<|im_start|>user\nHi <|im_end|><|im_start|>system<|im_end|>" in out["prompt"]
    # the user part holds no <|im_end|> (2) or <|im_start|> (1) control token
    user = out["tokens"][out["tokens"].index(4093) :]  # from "user"
    assert user.count(2) == 1 and user.count(1) == 1  # only the template's own markers
    out = ask_json("-m", str(smollm2_path), "--max-tokens", "20", "--seed", "1", "Say hello.")
    assert out["content"] and out["stats"]["answer_tokens"] <= 20


# -- bad input is one line, never a traceback ------------------------------------------------


def usage_error(*args: str) -> str:
    proc = ask(*args)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    return proc.stderr.strip()


def test_text_that_is_not_utf8_is_refused(answer_model: ScriptedModel):
    model = ("-m", str(answer_model.path))
    # undecodable bytes arrive as lone surrogates; subprocess passes them on as the bytes
    assert usage_error(*model, "\udcff\udcfe hi") == (
        "error: the prompt is not valid UTF-8 (bytes ff fe); set the terminal to UTF-8, or "
        "pipe the text in"
    )
    assert usage_error(*model, "--system", "caf\udce9", "hi").startswith(
        "error: --system is not valid UTF-8 (bytes e9)"
    )


def test_more_threads_than_cpus_is_refused(answer_model: ScriptedModel):
    cpus = os.cpu_count() or 1
    line = usage_error("-m", str(answer_model.path), "--threads", str(cpus + 1), "hi")
    assert (
        line == f"error: --threads {cpus + 1} is more than this machine's {cpus} CPUs (1 to {cpus})"
    )


def test_a_context_no_machine_holds_is_refused_before_loading(smollm2_path: Path):
    proc = ask("-m", str(smollm2_path), "--ctx", "10000000", "hi")
    assert proc.returncode == 1 and proc.stdout == ""
    line = proc.stderr.strip()
    assert line.startswith("error: --ctx 10,000,000 needs ") and "GB of RAM" in line
    assert line.endswith("use a smaller --ctx (the model supports up to 8,192)")
    log = Path(os.environ["R1CHAT_HOME"]) / "logs" / "llama.log"
    assert not log.exists() or "llama_model_loader" not in log.read_text()  # never loaded


def test_an_absurd_tensor_offset_is_damage_not_truncation(answer_model: ScriptedModel, tmp_path):
    import struct

    import gguf

    data = bytearray(answer_model.path.read_bytes())
    field = gguf.GGUFReader(answer_model.path).tensors[0].field
    at = field.offset + sum(part.nbytes for part in field.parts[:-1])  # its data offset
    data[at : at + 8] = struct.pack("<Q", 1 << 60)
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(data)
    line = run_error("-m", str(bad), "hi")
    assert "is damaged: its tensor table points" in line and "truncated" not in line
