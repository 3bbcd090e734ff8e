"""MCP servers: the config file read as Claude Desktop writes it (every mistake one line),
and the hub against real servers (the fixture, over stdio and streamable HTTP): tools
listed, calls answered, a server that cannot start, dies or hangs."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import CancelledError
from pathlib import Path

import pytest

from r1chat.core.errors import UsageError
from r1chat.mcp.client import McpHub
from r1chat.mcp.config import ServerSpec, load

SERVER = str(Path(__file__).resolve().parents[1] / "fixtures" / "mcp_server.py")


def written(tmp_path: Path, servers: object) -> Path:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": servers}))
    return path


def test_the_config_reads_claude_desktops_shape(tmp_path: Path) -> None:
    path = written(
        tmp_path,
        {
            "files": {"command": "npx", "args": ["-y", "server"], "env": {"A": "1"}},
            "web": {"url": "https://example.com/mcp", "headers": {"Authorization": "x"}},
            "old": {"command": "old", "disabled": True},
        },
    )
    files, web, old = load(path)
    assert (files.command, files.args, files.env) == ("npx", ("-y", "server"), {"A": "1"})
    assert (web.url, web.headers, web.where) == (
        "https://example.com/mcp",
        {"Authorization": "x"},
        "https://example.com/mcp",
    )
    assert old.disabled and McpHub([files, web, old]).specs == [files, web]
    assert load(tmp_path / "none.json") == []  # no file: no servers


@pytest.mark.parametrize(
    ("servers", "says"),
    [
        ({"a": {"command": "x", "url": "http://y"}}, "give either a 'command'"),
        ({"a": {}}, "give either a 'command'"),
        ({"a": {"command": "x", "args": "-y"}}, "'args' must be a list of strings"),
        ({"a": {"command": "x", "env": {"A": 1}}}, "'env' must be an object of strings"),
        ({"a": {"url": "ftp://y"}}, "'url' must start with http:// or https://"),
        ({"a": {"command": "x", "autoStart": True}}, "unknown field 'autoStart'"),
        ({"a": "npx"}, "expected an object"),
        ([], 'expected {"mcpServers": {NAME: {...}}}'),
    ],
)
def test_each_mistake_is_one_line(tmp_path: Path, servers: object, says: str) -> None:
    with pytest.raises(UsageError, match=repr(says)[1:-1].replace("(", r"\(")):
        load(written(tmp_path, servers))


def test_unreadable_files_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UsageError, match="not JSON"):
        load(tmp_path / "bad.json")
    with pytest.raises(UsageError, match="no such file"):
        load(tmp_path / "missing.json", required=True)


def stdio(mode: str = "ok") -> ServerSpec:
    return ServerSpec("weather", sys.executable, (SERVER, "--mode", mode))


@contextlib.contextmanager
def running(hub: McpHub) -> Iterator[McpHub]:
    """`hub` started, and closed after."""
    hub.start()
    try:
        yield hub
    finally:
        hub.close()


def test_stdio_tools_are_listed_and_called() -> None:
    hub = McpHub([stdio(), ServerSpec("broken", "/nonexistent/server")], connect_s=20)
    with running(hub):
        assert [t.name for t in hub.offered] == ["get_weather", "add"]
        assert hub.find("get_weather") is not None
        assert hub.find("get_weather").schema["properties"]["city"]["type"] == "string"  # type: ignore[union-attr]
        assert hub.problems == [
            "MCP server 'broken' (/nonexistent/server): cannot run it (No such file or "
            "directory: /nonexistent/server)"
        ]
        assert hub.call("get_weather", '{"city": "Oslo"}').result(10).text == "Sunny, 21 °C in Oslo"
        assert hub.call("add", '{"a": 2, "b": 40}').result(10).text == "42"
        assert hub.call("add", "[1]").result(10).error  # arguments must be an object
        assert hub.call("nope", "{}").result(10).text == "no tool named 'nope' is available"
        hub.off.add("weather")
        assert hub.offered == []


def test_a_dying_server_is_an_error_result_and_its_tools_go() -> None:
    hub = McpHub([stdio("die")], connect_s=20)
    with running(hub):
        result = hub.call("get_weather", '{"city": "Oslo"}').result(10)
        assert result.error and result.text.startswith("MCP server 'weather' failed")
        assert hub.offered == []
        assert "is not running" in hub.call("add", '{"a": 1, "b": 1}').result(10).text


def test_a_hanging_call_is_cancelled() -> None:
    hub = McpHub([stdio("hang")], connect_s=20)
    with running(hub):
        call = hub.call("get_weather", '{"city": "Oslo"}')
        time.sleep(0.5)
        assert not call.done()
        call.cancel()
        with pytest.raises(CancelledError):
            call.result(5)
        assert hub.call("add", '{"a": 1, "b": 2}').result(10).text == "3"  # still serves


@pytest.fixture
def http_server() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, SERVER, "--http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)


def test_streamable_http_tools_are_listed_and_called(http_server: str) -> None:
    hub = McpHub([ServerSpec("web", url=http_server, headers={"X-Client": "r1chat"})])
    with running(hub):
        assert hub.problems == [] and [t.name for t in hub.offered] == ["get_weather", "add"]
        assert hub.call("add", '{"a": 20, "b": 22}').result(10).text == "42"
    down = McpHub([ServerSpec("gone", url="http://127.0.0.1:9/mcp")], connect_s=10)
    down.start()
    assert down.tools == [] and down.problems == [
        "MCP server 'gone' (http://127.0.0.1:9/mcp): All connection attempts failed"
    ]
    down.close()


def test_a_server_that_never_answers_is_given_up_on() -> None:
    mute = ServerSpec("mute", sys.executable, ("-c", "import time; time.sleep(60)"))
    hub = McpHub([mute, stdio()], connect_s=2)
    started = time.monotonic()
    with running(hub):
        assert time.monotonic() - started < 10
        assert hub.problems == [f"MCP server 'mute' ({mute.where}): no answer in 2 s"]
        assert [t.server for t in hub.offered] == ["weather", "weather"]  # the other is up
