"""Choosing a remote: --endpoint, [remotes.NAME] in the config, the 671B catalog entry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from r1chat.cli import ask
from r1chat.cli.main import build_parser
from r1chat.config.file import Config
from r1chat.config.settings import Settings, resolve
from r1chat.core.errors import R1ChatError, UsageError
from r1chat.engine.remote.engine import RemoteEngine
from r1chat.launch.engines import open_engine
from r1chat.launch.remotes import PREFER, RemoteTarget, find_remote
from tests.fixtures.openai_server import OpenAIServer

URL = "http://gpu-box:8000/v1"


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer(models=("llama-3-70b", "deepseek-ai/DeepSeek-R1")) as s:
        yield s


@pytest.fixture(autouse=True)
def _no_default_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("R1CHAT_API_KEY", raising=False)


def test_options_reach_the_settings() -> None:
    args = build_parser([ask]).parse_args(
        ["ask", "--endpoint", URL, "--api-key-env", "MY_KEY", "-m", "served", "hi"]
    )
    settings = resolve(Config({}), vars(args))
    assert (settings.endpoint, settings.api_key_env, settings.model) == (URL, "MY_KEY", "served")


def test_with_an_endpoint_the_local_default_model_is_not_sent() -> None:
    config = Config({"model": {"default": "r1:7b"}})
    assert resolve(config, {"endpoint": URL}).model is None
    assert resolve(config, {}).model == "r1:7b"


def test_endpoint_targets() -> None:
    assert find_remote(Settings(endpoint=URL, model="served")) == RemoteTarget(
        URL, "served", None, "--api-key-env"
    )
    target = find_remote(Settings(endpoint=URL, model="r1:671b"))
    assert target is not None and (target.model, target.prefer) == (None, PREFER)


def test_default_key_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("R1CHAT_API_KEY", "k")
    target = find_remote(Settings(endpoint=URL))
    assert target is not None and target.api_key_env == "R1CHAT_API_KEY"


def test_configured_remote() -> None:
    config = Config(
        {"remotes": {"box": {"url": URL, "model": "m", "api_key_env": "BOX_KEY", "timeout": 900}}}
    )
    assert find_remote(Settings(model="box"), config) == RemoteTarget(
        URL, "m", "BOX_KEY", "api_key_env of [remotes.box]", 900
    )
    override = find_remote(Settings(model="box", api_key_env="OTHER"), config)
    assert override is not None and override.api_key_env == "OTHER"


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({}, "has no url"),
        ({"url": URL, "timeout": -1}, "timeout must be a positive number"),
        ({"url": URL, "api_key_env": 3}, "api_key_env must be the name"),
    ],
)
def test_bad_remote_entries(entry: dict, says: str) -> None:
    with pytest.raises(UsageError, match=says):
        find_remote(Settings(model="box"), Config({"remotes": {"box": entry}}))


def test_local_models_are_not_remote() -> None:
    assert find_remote(Settings(model="r1:7b"), Config({})) is None
    assert find_remote(Settings(), Config({})) is None


def test_the_671b_entry_needs_a_server() -> None:
    config = Config({})
    with pytest.raises(R1ChatError) as e:
        find_remote(Settings(model="r1:671b"), config)
    message = str(e.value)
    assert "--endpoint URL" in message and '[remotes."r1:671b"]' in message


def test_open_engine_for_a_configured_671b(
    server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOX_KEY", "secret-key")
    config = Config.load()
    config.data = {"remotes": {"r1:671b": {"url": server.url, "api_key_env": "BOX_KEY"}}}
    config.save()
    engine = open_engine(Settings(model="r1:671b"))
    assert isinstance(engine, RemoteEngine)
    assert engine.info.model == "deepseek-ai/DeepSeek-R1"  # picked among two: it is an R1
    assert server.requests[-1].headers["Authorization"] == "Bearer secret-key"
    engine.close()


def test_open_engine_with_endpoint_and_missing_key(server: OpenAIServer) -> None:
    with pytest.raises(R1ChatError, match=r"environment variable NOPE_KEY .* is not set"):
        open_engine(Settings(endpoint=server.url, api_key_env="NOPE_KEY"))
    engine = open_engine(Settings(endpoint=server.url, model="llama-3-70b"))
    assert engine.info.model == "llama-3-70b" and engine.info.backend == "remote"
