"""The scripted GGUF fixtures work through the real llama.cpp (load, tokenize, decode, sample)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jinja2
import llama_cpp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.scripted import (
    ASSISTANT,
    BOS,
    BUDGET_TEXT,
    END_THINK,
    EOS,
    SPECIAL_TOKENS,
    THINK,
    TOOL_CALL,
    TOOL_CALL_END,
    TOOL_CALLS_BEGIN,
    USER,
    ScriptedModel,
    _Script,
    _Vocab,
    chat_template,
    write_long_model,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLING = [
    pytest.param({"temp": 0.0}, id="greedy"),
    pytest.param({"temp": 0.6, "top_p": 0.95}, id="t0.6-p0.95"),
]


class Loader:
    """Loads each GGUF once (per n_ctx) and closes them all at the end of the module."""

    def __init__(self) -> None:
        self.cache: dict[tuple[Path, int], llama_cpp.Llama] = {}

    def __call__(self, path: Path, n_ctx: int = 512) -> llama_cpp.Llama:
        key = (path, n_ctx)
        if key not in self.cache:
            self.cache[key] = llama_cpp.Llama(
                model_path=str(path), n_ctx=n_ctx, n_gpu_layers=0, verbose=False
            )
        return self.cache[key]


@pytest.fixture(scope="module")
def load() -> Iterator[Loader]:
    loader = Loader()
    yield loader
    for llm in loader.cache.values():
        llm.close()


def special_id(llm: llama_cpp.Llama, text: str) -> int:
    ids = llm.tokenize(text.encode(), add_bos=False, special=True)
    assert len(ids) == 1, (text, ids)
    return ids[0]


def text_ids(llm: llama_cpp.Llama, text: str) -> list[int]:
    return llm.tokenize(text.encode(), add_bos=False, special=False)


def prompt_ids(llm: llama_cpp.Llama, user: str = "hi", *, think: bool = True) -> list[int]:
    """BOS <｜User｜> user <｜Assistant｜> [<think> \\n], user text tokenized as text."""
    ids = [llm.token_bos(), special_id(llm, USER), *text_ids(llm, user), special_id(llm, ASSISTANT)]
    if think:
        ids += [special_id(llm, THINK), *text_ids(llm, "\n")]
    return ids


def generate(
    llm: llama_cpp.Llama, prompt: list[int], max_tokens: int, **sampling: float
) -> tuple[list[int], bool]:
    """Generated ids (EOG excluded) and whether an end-of-generation token stopped it."""
    out: list[int] = []
    if max_tokens <= 0:
        return out, False
    sampling = sampling or {"temp": 0.6, "top_p": 0.95}
    for tok in llm.generate(prompt, **sampling):  # type: ignore[arg-type]
        if llama_cpp.llama_vocab_is_eog(llm._model.vocab, tok):
            return out, True
        out.append(tok)
        if len(out) >= max_tokens:
            break
    return out, False


def detok(llm: llama_cpp.Llama, ids: list[int]) -> str:
    return llm.detokenize(ids).decode("utf-8")


@pytest.mark.parametrize("sampling", SAMPLING)
def test_answer_model_generates_its_script(
    load: Loader, answer_model: ScriptedModel, sampling: dict[str, float]
) -> None:
    llm = load(answer_model.path)
    assert answer_model.completion == (
        "Okay, the user asks for the sum of two and two. That is simple arithmetic: four.\n"
        "</think>\n\nThe answer is **4**.\n\n- 2 + 2 = 4\n- checked twice ✓"
    )
    out, stopped = generate(llm, prompt_ids(llm), 100, **sampling)
    assert stopped
    assert detok(llm, out) == answer_model.completion
    assert len(out) == answer_model.generated_tokens
    # "✓" is split across the last two tokens: incremental decoding must buffer bytes.
    assert [llm.detokenize([t]) for t in out[-2:]] == [b" \xe2\x9c", b"\x93"]

    # Older template: the prompt ends at <｜Assistant｜>; the model opens <think>\n itself.
    out, stopped = generate(llm, prompt_ids(llm, think=False), 100, **sampling)
    assert stopped
    assert detok(llm, out) == "<think>\n" + answer_model.completion
    assert out[0] == special_id(llm, THINK)


@pytest.mark.parametrize("sampling", SAMPLING)
def test_nothink_model_skips_reasoning(
    load: Loader, nothink_model: ScriptedModel, sampling: dict[str, float]
) -> None:
    llm = load(nothink_model.path)
    assert nothink_model.reasoning == ""
    assert nothink_model.answer == "Hello! How can I help you today?"
    out, stopped = generate(llm, prompt_ids(llm), 50, **sampling)
    assert stopped
    assert detok(llm, out) == "</think>\n\nHello! How can I help you today?"
    assert out[0] == special_id(llm, END_THINK)

    out, stopped = generate(llm, prompt_ids(llm, think=False), 50, **sampling)
    assert stopped
    assert detok(llm, out) == "<think>\n</think>\n\nHello! How can I help you today?"


@pytest.mark.parametrize("sampling", SAMPLING)
def test_loop_model_cycles_until_the_budget_text_is_injected(
    load: Loader, loop_model: ScriptedModel, sampling: dict[str, float]
) -> None:
    llm = load(loop_model.path)
    assert loop_model.reasoning == "Okay, let me think."
    assert loop_model.reasoning_cycle == " Wait, let me check again."
    prompt = prompt_ids(llm)
    out, stopped = generate(llm, prompt, 203, **sampling)
    assert not stopped
    text = detok(llm, out)
    assert text == (loop_model.reasoning + loop_model.reasoning_cycle * 60)[: len(text)]
    assert text.count(loop_model.reasoning_cycle) == (203 - 4) // 4

    # The budget text, tokenized as text, ends `</think>` `ĊĊ`; the model then answers.
    budget = text_ids(llm, BUDGET_TEXT)
    assert budget[-2:] == [special_id(llm, END_THINK), *text_ids(llm, "\n\n")]
    assert len(text_ids(llm, "\n\n")) == 1
    assert detok(llm, budget) == BUDGET_TEXT
    answer, stopped = generate(llm, prompt + out[:37] + budget, 50, **sampling)
    assert stopped
    assert detok(llm, answer) == loop_model.answer
    assert loop_model.answer == "Based on what I have so far, the answer is **4**."

    # Injecting just "</think>" works too: the model adds "\n\n" itself.
    answer, stopped = generate(llm, [*prompt, *out[:9], special_id(llm, END_THINK)], 50)
    assert stopped
    assert detok(llm, answer) == "\n\n" + loop_model.answer


@pytest.mark.parametrize("sampling", SAMPLING)
def test_answer_loop_model_repeats_its_answer_forever(
    load: Loader, answer_loop_model: ScriptedModel, sampling: dict[str, float]
) -> None:
    llm = load(answer_loop_model.path)
    m = answer_loop_model
    assert (m.reasoning, m.answer, m.answer_cycle) == (
        "Okay, a yes-or-no question. The answer is yes.\n",
        "It is true:",
        " yes, it is.",
    )
    out, stopped = generate(llm, prompt_ids(llm), 300, **sampling)
    assert not stopped
    text = detok(llm, out)
    expected = m.reasoning + "</think>\n\n" + m.answer + m.answer_cycle * 100
    assert text == expected[: len(text)]
    assert text.count(m.answer_cycle) == (300 - m.thinking_tokens - 2 - m.answer_tokens) // 3


def test_long_model_generates_its_whole_script(load: Loader, long_model: ScriptedModel) -> None:
    assert (long_model.thinking_tokens, long_model.answer_tokens) == (6000, 1500)
    llm = load(long_model.path, 8192)
    out, stopped = generate(llm, prompt_ids(llm), 8000)
    assert stopped
    assert len(out) == long_model.generated_tokens
    assert detok(llm, out) == long_model.completion
    assert long_model.reasoning.endswith(".\n") and "\n\n" in long_model.reasoning
    for markdown in ("\n\n## Part 2:", "\n- item 1.2:", "```python\n", "|---|---|"):
        assert markdown in long_model.answer
    assert long_model.answer.count("```") % 2 == 0


@pytest.mark.parametrize(("thinking", "answer"), [(300, 120), (60, 40), (1, 1), (0, 0)])
def test_long_model_lengths_are_parameters(
    tmp_path: Path, load: Loader, thinking: int, answer: int
) -> None:
    # 300 + 120: random embeddings; 60 + 40: one-hot, n_embd 128; 1 + 1, 0 + 0: degenerate.
    model = write_long_model(tmp_path, thinking_tokens=thinking, answer_tokens=answer)
    assert model.path.name == f"scripted-long-{thinking}-{answer}.gguf"
    assert (model.thinking_tokens, model.answer_tokens) == (thinking, answer)
    llm = load(model.path, 1024)
    out, stopped = generate(llm, prompt_ids(llm), 1000)
    assert stopped
    assert len(out) == thinking + 2 + answer
    assert detok(llm, out) == model.completion
    assert detok(llm, out[:thinking]) == model.reasoning


def test_token_types_match_the_real_r1_vocabulary(
    load: Loader, answer_model: ScriptedModel
) -> None:
    llm = load(answer_model.path)
    attr = llm._model.token_get_attr
    for text, ttype in SPECIAL_TOKENS.items():
        tid = special_id(llm, text)
        expected = (
            llama_cpp.LLAMA_TOKEN_ATTR_CONTROL
            if ttype == llama_cpp.LLAMA_TOKEN_TYPE_CONTROL
            else llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
        )
        assert attr(tid) & expected, text
        plain = text_ids(llm, text)
        if ttype == llama_cpp.LLAMA_TOKEN_TYPE_USER_DEFINED:
            # The injection hazard: user-defined tokens match even as plain text.
            assert plain == [tid], text
            assert llm.detokenize([tid]) == text.encode()
        else:
            assert tid not in plain and len(plain) > 1, text
            assert detok(llm, plain) == text
            assert llm.detokenize([tid]) == b""
            assert llm.detokenize([tid], special=True) == text.encode()
    assert llm.token_bos() == special_id(llm, BOS)
    assert llm.token_eos() == special_id(llm, EOS)
    assert {TOOL_CALL, TOOL_CALL_END, TOOL_CALLS_BEGIN} <= set(SPECIAL_TOKENS)
    assert llm.tokenize(b"hi") == [llm.token_bos(), *text_ids(llm, "hi")]  # add_bos_token


def test_metadata_and_chat_template(
    load: Loader, answer_model: ScriptedModel, answer_model_think_template: ScriptedModel
) -> None:
    messages = [{"role": "user", "content": "hi"}]
    for model, suffix in ((answer_model, ""), (answer_model_think_template, "<think>\n")):
        llm = load(model.path)
        meta = llm.metadata
        assert meta["general.architecture"] == "qwen2"
        assert meta["general.name"] == "DeepSeek-R1-Distill-Qwen-Scripted-Answer"
        assert meta["tokenizer.ggml.pre"] == "deepseek-r1-qwen"
        assert meta["tokenizer.chat_template"] == chat_template(model.think_prompt)
        rendered = jinja2.Template(meta["tokenizer.chat_template"]).render(
            messages=messages, bos_token=BOS, add_generation_prompt=True
        )
        assert rendered == f"{BOS}{USER}hi{ASSISTANT}{suffix}"
    assert answer_model.path != answer_model_think_template.path


@pytest.fixture(scope="module")
def plain_llm(load: Loader, tmp_path_factory: pytest.TempPathFactory) -> llama_cpp.Llama:
    from tests.fixtures.scripted import write_answer_model

    return load(write_answer_model(tmp_path_factory.mktemp("tok")).path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60))
def test_any_user_text_round_trips_through_the_tokenizer(
    plain_llm: llama_cpp.Llama, text: str
) -> None:
    user_defined = [t for t, kind in SPECIAL_TOKENS.items() if kind == 4]
    while any(t in text for t in user_defined):  # those match even as text (tested above)
        for token in user_defined:
            text = text.replace(token, "")
    ids = text_ids(plain_llm, text)
    assert plain_llm.detokenize(ids) == text.encode("utf-8")


def test_common_words_use_merges(load: Loader, answer_model: ScriptedModel) -> None:
    llm = load(answer_model.path)
    assert len(text_ids(llm, "hi")) == 1
    assert len(text_ids(llm, "hello")) == 1
    assert len(text_ids(llm, "\n\n")) == 1
    assert len(text_ids(llm, "Considering")) == 1


def test_chains_must_not_repeat_a_token() -> None:
    script = _Script(_Vocab())
    with pytest.raises(ValueError, match="must not repeat"):
        script.chain([ASSISTANT, THINK, "\n", " one", " two", " one", END_THINK])


def test_module_entry_point_writes_every_model(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "tests.fixtures.scripted", str(tmp_path)]
    cmd += ["--thinking-tokens", "50", "--answer-tokens", "40"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "scripted_models.json").read_text(encoding="utf-8"))
    assert set(manifest) == {"answer", "nothink", "boxed", "loop", "answer_loop", "long"}
    for entry in manifest.values():
        assert Path(entry["path"]).is_file()
    assert manifest["long"]["thinking_tokens"] == 50
    assert manifest["long"]["answer_tokens"] == 40
    assert manifest["answer"]["completion"].endswith("✓")


def test_smollm2_real_model_loads_and_generates(smollm2_path: Path) -> None:
    llm = llama_cpp.Llama(model_path=str(smollm2_path), n_ctx=512, n_gpu_layers=0, verbose=False)
    try:
        assert "tokenizer.chat_template" in llm.metadata
        prompt = llm.tokenize(
            b"<|im_start|>user\nSay hello.<|im_end|>\n<|im_start|>assistant\n", special=True
        )
        out, _ = generate(llm, prompt, 8, temp=0.0)
        assert out and detok(llm, out).strip()
    finally:
        llm.close()
