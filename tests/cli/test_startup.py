"""`r1chat --help` and the light commands start without the heavy libraries."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.fixtures.scripted import ScriptedModel

HEAVY = ("llama_cpp", "textual", "rich", "huggingface_hub", "jinja2", "numpy")

PROBE = """
import json, runpy, sys
heavy = json.loads(sys.argv[2])
sys.argv = ["r1chat", *json.loads(sys.argv[1])]
try:
    runpy.run_module("r1chat", run_name="__main__")
except SystemExit:
    pass
print(json.dumps([m for m in heavy if m in sys.modules]), file=sys.stderr)
"""


def loaded_after(*argv: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return json.loads(proc.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "argv", [["--help"], ["--version"], ["ask", "--help"], ["chat", "--help"], ["models", "--help"]]
)
def test_help_imports_no_heavy_library(argv: list[str]) -> None:
    assert loaded_after(*argv) == []


@pytest.mark.parametrize("argv", [["models", "list"], ["completion", "--models"]])
def test_listing_models_needs_neither_llama_cpp_nor_textual(argv: list[str]) -> None:
    loaded = loaded_after(*argv)
    assert "llama_cpp" not in loaded and "textual" not in loaded


def ask_imports(model: ScriptedModel) -> set[str]:
    """The modules `ask` imports (the parent's and the forked child's: `-X importtime`
    sees both) for a dry run on `model`, launched a second time (the first launch's kernel
    probe writes a GGUF, with numpy)."""
    argv = ["ask", "--dry-run", "--no-log", "-m", str(model.path), "hi"]
    subprocess.run([sys.executable, "-m", "r1chat", *argv], capture_output=True, timeout=60)
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "r1chat", *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "hi" in proc.stdout
    return {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}


def test_a_command_imports_no_other_command(answer_model: ScriptedModel) -> None:
    """`ask` runs (here as far as its prompt) without the chat's, the server's or the MCP
    client's modules."""
    imported = ask_imports(answer_model)
    assert "r1chat.engine.local.engine" in imported  # (what the child did is seen)
    assert imported.isdisjoint(OTHERS)


def test_ask_with_an_r1_model_imports_neither_numpy_nor_jinja2(answer_model: ScriptedModel) -> None:
    """llama.cpp is reached through its ctypes bindings alone (not llama-cpp-python's
    package, which imports numpy, jinja2 and diskcache), and an R1 model's prompts are
    built without its chat template."""
    imported = ask_imports(answer_model)
    assert "llama_cpp._ctypes_extensions" in imported  # (llama.cpp was loaded)
    assert imported.isdisjoint({"numpy", "jinja2", "diskcache", "llama_cpp.llama"})


OTHERS = ("r1chat.tui.command", "r1chat.serve.command", "r1chat.serve.agents", "r1chat.mcp.client")


def test_each_command_is_registered_by_its_module() -> None:
    import argparse
    import importlib

    from r1chat.__main__ import COMMANDS
    from r1chat.cli.main import build_parser

    for name, module in COMMANDS.items():
        parser = build_parser([importlib.import_module(module)])
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        assert list(sub.choices) == [name]
