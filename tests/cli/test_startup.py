"""`r1chat --help` and the light commands start without the heavy libraries."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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
