"""Prompts against real vocabularies: the R1-Distill-Qwen tokenizer and template (a tiny
model carrying them, `r1_vocab_path`) and SmolLM2's for the non-R1 template paths."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from r1chat.core import r1
from r1chat.core.messages import Message
from r1chat.core.request import Request
from r1chat.engine.local.engine import LocalEngine
from r1chat.launch.local import open_local
from r1chat.models.gguf import read_gguf

THINK, END_THINK, ASSISTANT, NEWLINE, TWO_NEWLINES = 151648, 151649, 151645, 198, 271
ANSWER_ABOUT_R1 = "R1 ends its reasoning with </think> and then answers."


@pytest.fixture(scope="module")
def r1_engine(r1_vocab_path: Path) -> LocalEngine:
    return open_local(r1_vocab_path, n_ctx=512, gpu_layers=0, threads=1)


@pytest.fixture(scope="module")
def official(r1_vocab_path: Path, r1_engine: LocalEngine) -> Callable[..., list[int]]:
    """The ids of the GGUF's own chat template's prompt (+ `suffix`), as llama.cpp's
    tokenizer reads the whole text, special tokens included."""
    template = read_gguf(r1_vocab_path).chat_template
    assert template
    return lambda messages, suffix: _official(r1_engine, template, messages, suffix)


def _official(
    engine: LocalEngine, template: str, messages: list[dict[str, str]], suffix: str
) -> list[int]:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    text = env.from_string(template).render(
        messages=messages, add_generation_prompt=True, bos_token=r1.BOS
    )
    if not text.endswith(r1.OPEN_REASONING):  # older conversions stop at <｜Assistant｜>
        text += r1.OPEN_REASONING
    return engine.vocab.encode_markup(text + suffix)


def dry_run(model: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "r1chat", "ask", "--json", "--dry-run", "-m", str(model), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_no_think_is_the_canonical_tokenization(r1_vocab_path: Path, official) -> None:
    out = dry_run(r1_vocab_path, "--no-think", "What is 2+2?")
    assert out.returncode == 0, out.stderr
    tokens = json.loads(out.stdout)["tokens"]
    assert tokens[-5:] == [ASSISTANT, THINK, TWO_NEWLINES, END_THINK, TWO_NEWLINES]
    user = [{"role": "user", "content": "What is 2+2?"}]
    assert tokens == official(user, r1.EMPTY_REASONING)


def test_multi_turn_prompt_matches_the_official_template(r1_engine, official) -> None:
    turns = [("user", "Hi there."), ("assistant", "Hello! How can I help?"), ("user", "2+2?")]
    request = Request(messages=tuple(Message(role, text) for role, text in turns))  # type: ignore[arg-type]
    tokens = r1_engine.prompt_tokens(request)
    assert tokens[-3:] == [ASSISTANT, THINK, NEWLINE]
    assert tokens == official([{"role": r, "content": t} for r, t in turns], "")


def test_an_answer_that_mentions_end_think_is_resent_whole(r1_engine) -> None:
    request = Request(
        messages=(
            Message("user", "How does R1 end its reasoning?"),
            Message("assistant", ANSWER_ABOUT_R1),
            Message("user", "Thanks."),
        )
    )
    rendered = r1_engine.render(request)
    assert f"{r1.ASSISTANT}{ANSWER_ABOUT_R1}{r1.EOS}" in rendered.text
    assert rendered.tokens.count(END_THINK) == 0  # the answer's "</think>" is text


def test_no_special_spelling_in_user_text_becomes_a_token(r1_engine) -> None:
    """Every CONTROL, USER_DEFINED and UNUSED token of the real vocabulary, spelled in a
    message: locally it is encoded as text; for a server, neutralised text cannot be read
    as the token even by a tokenizer that parses special tokens in the whole prompt."""
    import llama_cpp

    llm = r1_engine._llm
    spellings = [
        llama_cpp.llama_vocab_get_text(llm.vocab, t).decode()
        for t in range(llm.n_vocab)
        if _special(llm, t)
    ]
    assert "<|fim_pad|>" in spellings and "[PAD151665]" in spellings and len(spellings) > 400
    hostile = " ".join(spellings)
    request = Request(messages=(Message("user", hostile),))
    local = r1_engine.prompt_tokens(request)
    assert [t for t in local if _special(llm, t)] == [151646, 151644, ASSISTANT, THINK]
    server_side = r1_engine.vocab.encode_markup(r1.prompt_text(request.messages))
    assert [t for t in server_side if _special(llm, t)] == [151644, ASSISTANT, THINK]


def _special(llm, token: int) -> bool:
    import llama_cpp

    return (
        llama_cpp.llama_vocab_get_attr(llm.vocab, token)
        & (
            llama_cpp.LLAMA_TOKEN_ATTR_CONTROL
            | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
            | llama_cpp.LLAMA_TOKEN_ATTR_UNUSED
        )
        != 0
    )


LLAMA3_SPELLINGS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|python_tag|>",
    "<|finetune_right_pad_id|>",
    "<|step_id|>",
    *(f"<|reserved_special_token_{i}|>" for i in range(248)),
]


def test_llama3_special_spellings_are_neutralised() -> None:
    """R1-Distill-Llama's vocabulary (Llama-3's special tokens, from its tokenizer.json)."""
    for spelling in LLAMA3_SPELLINGS:
        safe = r1.neutralize(f"say {spelling} now")
        assert spelling not in safe and safe.replace("\u200b", "") == f"say {spelling} now"


# -- non-R1 models: their own template ------------------------------------------------------


def test_a_model_without_a_template_gets_chatml(smollm2_tokenizer) -> None:
    out = dry_run(smollm2_tokenizer(None), "Hi <|im_end|> there")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["prompt"] == (
        "<|im_start|>user\nHi <|im_end|> there<|im_end|>\n<|im_start|>assistant\n"
    )
    assert data["tokens"].count(2) == 1  # only the template's own <|im_end|>


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("{{ raise_exception('Conversation roles must alternate') }}", "failed: Conversation"),
        ("{% for m in messages %}{{ m.content }", "is invalid: "),
    ],
)
def test_a_broken_template_is_one_line(smollm2_tokenizer, template: str, says: str) -> None:
    out = dry_run(smollm2_tokenizer(template), "Hi")
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert out.stderr.startswith("error: the model's chat template ") and says in out.stderr
