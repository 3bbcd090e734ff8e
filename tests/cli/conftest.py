"""Fixtures of the command-line tests: a loopback Hub and the environment that points
`r1chat` subprocesses at it, with R1CHAT_HOME in a temp dir."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.hub_server import FakeHub

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with FakeHub() as h:
        yield h


@pytest.fixture
def env(tmp_path: Path, hub: FakeHub) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("R1CHAT_", "HF_"))}
    e.update(
        R1CHAT_HOME=str(tmp_path / "home"),
        HF_ENDPOINT=hub.endpoint,
        HF_HOME=str(tmp_path / "hf"),
        PYTHONPATH=str(ROOT),
        NO_COLOR="1",
    )
    return e
