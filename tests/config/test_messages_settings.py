"""Message preparation, settings precedence and the config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from r1chat.config.file import Config, dumps
from r1chat.config.settings import resolve
from r1chat.core.errors import R1ChatError, UsageError
from r1chat.core.messages import MATH_INSTRUCTION, Message, prepare

ANSWER_ABOUT_R1 = "R1 ends its reasoning with </think> and then answers."


def test_prepare_folds_system_keeps_answers_whole_and_adds_math():
    msgs = [
        Message("system", "Be brief."),
        Message("user", "2+2?"),
        Message("assistant", ANSWER_ABOUT_R1),  # stored answers hold no reasoning
        Message("user", "times 3?"),
    ]
    out = prepare(msgs, system="Answer in French.", math=True)
    assert out == [
        Message("user", "Answer in French.\n\nBe brief.\n\n2+2?"),
        Message("assistant", ANSWER_ABOUT_R1),
        Message("user", f"times 3?\n\n{MATH_INSTRUCTION}"),
    ]


def test_settings_precedence(tmp_path: Path):
    cfg = Config(
        {
            "sampling": {"temperature": 0.5, "top_p": 0.9, "preset": "mine"},
            "presets": {"mine": {"temperature": 0.65}},
            "reasoning": {"think_budget": 500, "loop_guard": False},
            "model": {"ctx": 4096, "default": "r1:7b"},
        },
        tmp_path / "c.toml",
    )
    # the config's preset, then the [sampling] keys beside it, then flags
    s = resolve(cfg, {"top_p": 0.8})
    assert (s.sampling.temperature, s.sampling.top_p) == (0.5, 0.8)
    assert s.preset == "mine"
    # a preset named on the command line wins over [sampling]
    s = resolve(cfg, {"preset": "mine"})
    assert (s.sampling.temperature, s.sampling.top_p) == (0.65, 0.9)
    assert s.guards.think_budget == 500 and s.guards.loop_guard is False
    assert (s.model, s.n_ctx) == ("r1:7b", 4096)
    s = resolve(cfg, {"preset": "greedy", "loop_guard": True, "model": "x.gguf"})
    assert s.sampling.temperature == 0.0 and s.guards.loop_guard and s.model == "x.gguf"


def test_defaults_are_deepseeks_advice(tmp_path: Path):
    s = resolve(Config({}, tmp_path / "none.toml"), {})
    assert (s.sampling.temperature, s.sampling.top_p) == (0.6, 0.95)
    assert s.guards.loop_guard and s.guards.think_budget is None and s.think
    assert s.preset == "deepseek" and not s.math


def test_saved_sampling_is_not_masked_by_the_default_preset(tmp_path: Path):
    cfg = Config({"sampling": {"temperature": 0.3}, "reasoning": {"think": False, "math": True}})
    s = resolve(cfg, {})
    assert s.sampling.temperature == 0.3 and not s.think and s.math
    assert resolve(cfg, {"temperature": 0.7}).sampling.temperature == 0.7


@pytest.mark.parametrize(
    "cli",
    [
        {"preset": "nope"},
        {"temperature": -1.0},
        {"top_p": 0.0},
        {"max_tokens": 0},
        {"think_budget": 0},
        {"n_ctx": 8},
    ],
)
def test_bad_settings_are_usage_errors(tmp_path: Path, cli: dict):
    with pytest.raises(UsageError):
        resolve(Config({}, tmp_path / "c.toml"), cli)


def test_config_round_trip_and_bad_toml(tmp_path: Path):
    path = tmp_path / "sub" / "config.toml"
    cfg = Config({}, path)
    cfg.set("sampling", "temperature", 0.7)
    cfg.set("presets.fast", "top_p", 0.9)
    cfg.set("chat", "system_prompt", 'Say "hi"\nthen stop')
    cfg.save()
    again = Config.load(path)
    assert again.get("sampling", "temperature") == 0.7
    assert again.section("presets.fast") == {"top_p": 0.9}
    assert again.get("chat", "system_prompt") == 'Say "hi"\nthen stop'
    path.write_text("[sampling\ntemperature = ")
    with pytest.raises(R1ChatError, match="bad config"):
        Config.load(path)


def test_dumps_nested_tables():
    text = dumps({"a": 1, "remotes": {"big": {"url": "http://x", "ok": True}}})
    assert "a = 1" in text and "[remotes.big]" in text and 'url = "http://x"' in text
