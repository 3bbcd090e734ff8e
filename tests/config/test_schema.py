"""The config schema: every key validated once, with file, section, key, value and rule."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from r1chat.config import paths
from r1chat.config.file import Config
from r1chat.config.schema import ConfigError, Remote, parse
from r1chat.config.settings import resolve
from r1chat.core.errors import UsageError
from tests.fixtures.scripted import ScriptedModel

GOOD = """
[model]
default = "r1:7b"
ctx = 16384
gpu_layers = -1
threads = 4

[sampling]
temperature = 0.5
top_k = 20
preset = "mine"

[presets.mine]
top_p = 0.9

[reasoning]
display = "collapsed"
think_budget = 900
loop_guard = false

[chat]
system_prompt = "Be brief."

[remotes.box]
url = "http://gpu-box:8000/v1"
timeout = 600
"""


def write_config(text: str) -> Path:
    path = paths.config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_full_config_becomes_typed_values() -> None:
    write_config(GOOD)
    values = Config.load().values
    assert (values.model.default, values.model.ctx, values.model.gpu_layers) == ("r1:7b", 16384, -1)
    assert values.sampling == {"temperature": 0.5, "top_k": 20, "preset": "mine"}
    assert values.presets == {"mine": {"top_p": 0.9}}
    assert values.reasoning.display == "collapsed" and values.reasoning.loop_guard is False
    assert values.reasoning.think is True  # absent: the default
    assert values.system_prompt == "Be brief."
    assert values.remotes == {"box": Remote("http://gpu-box:8000/v1", timeout=600)}


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        (
            '[model]\nctx = "big"',
            "[model] in {path}: ctx must be a whole number of tokens, at least 64, not 'big'",
        ),
        (
            '[sampling]\ntemperature = "hot"',
            "[sampling] in {path}: temperature must be a number from 0 to 5, not 'hot'",
        ),
        (
            "[model]\ndefault = 7",
            "[model] in {path}: default must be a model name or a GGUF path, not 7",
        ),
        ("[chat]\nsystem_prompt = 5", "[chat] in {path}: system_prompt must be text, not 5"),
        (
            '[reasoning]\nloop_guard = "no"',
            "[reasoning] in {path}: loop_guard must be true or false, not 'no'",
        ),
        (
            "[model]\nctx = true",
            "[model] in {path}: ctx must be a whole number of tokens, at least 64, not True",
        ),
        (
            "[sampling]\nmin_p = 2",
            "[sampling] in {path}: min_p must be a number from 0 to 1, not 2",
        ),
        (
            "[model]\nthreads = 0",
            "[model] in {path}: threads must be a whole number, at least 1, not 0",
        ),
        (
            "[sampling]\ntemprature = 0.5",
            "[sampling] in {path}: unknown key 'temprature' "
            "(known: temperature, top_p, top_k, min_p, max_tokens, seed, preset)",
        ),
        ("[presets.x]\npreset = 'y'", "[presets.x] in {path}: unknown key 'preset'"),
        ("[remotes.box]\nurl = 5", "[remotes.box] in {path}: url must be an http(s) URL, not 5"),
        ("[modle]\nctx = 1", "{path}: unknown section [modle]"),
        ("model = 3", "{path}: model must be a table ([model])"),
    ],
)
def test_a_bad_value_is_one_line_naming_file_key_value_and_rule(toml: str, says: str) -> None:
    path = write_config(toml)
    with pytest.raises(ConfigError) as e:
        Config.load()
    assert str(e.value).startswith(says.format(path=path))
    assert "\n" not in str(e.value)


def test_command_line_values_follow_the_same_rules() -> None:
    config = Config({})
    for cli, says in [
        ({"min_p": 2.0}, "--min-p must be a number from 0 to 1, not 2.0"),
        ({"threads": 0}, "--threads must be a whole number, at least 1, not 0"),
        ({"gpu_layers": -2}, "--gpu-layers must be -1 (all), 0 or a number of layers, not -2"),
        ({"n_ctx": 8}, "--ctx must be a whole number of tokens, at least 64, not 8"),
    ]:
        with pytest.raises(UsageError, match=says.replace("(", r"\(").replace(")", r"\)")):
            resolve(config, cli)


def test_parse_needs_no_file() -> None:
    assert parse({}, Path("x.toml")).reasoning.display == "show"


def test_a_bad_config_stops_ask_with_one_line_and_exit_2(answer_model: ScriptedModel) -> None:
    path = write_config('[model]\nctx = "big"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "r1chat", "ask", "-m", str(answer_model.path), "hi"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        f"error: [model] in {path}: ctx must be a whole number of tokens, at least 64, not 'big'\n"
    )


def test_the_sampling_rules_cover_exactly_the_sampling_fields() -> None:
    from dataclasses import fields

    from r1chat.config.schema import SAMPLING
    from r1chat.core.request import Sampling

    per_request = {"schema"}  # an answer's JSON schema comes with a request, not the config
    assert set(SAMPLING) == {f.name for f in fields(Sampling)} - per_request
