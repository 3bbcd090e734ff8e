"""`r1chat serve`'s front door: DNS rebinding, web pages, content types, oversized bodies,
and requests that used to give 500s or tracebacks."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.fixtures.scripted import ScriptedModel
from tests.fixtures.serve import Serving, serving

HI = [{"role": "user", "content": "What is 2+2?"}]
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, answer_model: ScriptedModel
) -> Iterator[Serving]:
    home = tmp_path_factory.mktemp("door-home")
    (home / "config").mkdir()
    (home / "config" / "config.toml").write_text(
        '[serve]\nallowed_origins = ["https://app.example"]\nallowed_hosts = [".lan"]\n'
    )
    env = {"R1CHAT_HOME": str(home), "KEY": "k\u00e9y"}
    with serving(
        answer_model.path,
        "--ctx",
        "1024",
        "--allow-host",
        "gpu-box",
        "--allow-origin",
        "https://other.example/",
        env=env,
    ) as s:
        yield s


def post(
    s: Serving, body: Any = None, path: str = "chat/completions", **kw: Any
) -> httpx2.Response:
    content = kw.pop("content", None)
    if content is None:
        content = json.dumps({"messages": HI} if body is None else body)
    headers = {**JSON, **kw.pop("headers", {})}
    return httpx2.post(f"{s.url}/{path}", content=content, headers=headers, timeout=60, **kw)


def error(r: httpx2.Response) -> dict[str, Any]:
    return r.json()["error"]  # type: ignore[no-any-return]


def test_dns_rebinding_is_refused(server: Serving) -> None:
    port = server.url.split(":")[2].split("/")[0]
    r = post(server, headers={"Host": f"evil.example:{port}"})
    assert r.status_code == 403 and error(r)["code"] == "host_not_allowed"
    assert "start it with --allow-host evil.example" in error(r)["message"]
    assert httpx2.get(f"{server.url}/models", headers={"Host": "evil.example"}).status_code == 403
    for ok in (
        "localhost",
        f"127.0.0.1:{port}",
        "[::1]",
        "app.localhost",
        "gpu-box",
        "box.lan",
        "192.168.1.7",
    ):
        assert post(server, headers={"Host": ok}).status_code == 200, ok
    lines = server.lines(wait_for="403")
    assert any("403 · Host 'evil.example' is not this server" in ln for ln in lines)


def test_web_pages_are_refused_unless_on_this_machine_or_allowed(server: Serving) -> None:
    evil = {"Origin": "http://evil.example", "Content-Type": "text/plain"}
    r = httpx2.post(
        f"{server.url}/chat/completions",
        content=json.dumps({"messages": HI}),
        headers=evil,
        timeout=60,
    )
    assert r.status_code == 403 and error(r)["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in r.headers
    assert httpx2.get(f"{server.url}/models", headers={"Origin": "null"}).status_code == 403
    for origin in (
        "http://localhost:3000",
        "http://127.0.0.1:8080",
        "https://app.example",
        "https://other.example",
    ):
        r = post(server, headers={"Origin": origin})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == origin
        assert r.headers["vary"] == "Origin"


def test_preflights(server: Serving) -> None:
    asks = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    ok = httpx2.options(
        f"{server.url}/chat/completions", headers={**asks, "Origin": "http://localhost:5173"}
    )
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert ok.headers["access-control-allow-headers"] == "authorization, content-type"
    assert "POST" in ok.headers["access-control-allow-methods"]
    refused = httpx2.options(
        f"{server.url}/chat/completions", headers={**asks, "Origin": "https://evil.example"}
    )
    assert refused.status_code == 403


def test_bodies_must_be_json(server: Serving) -> None:
    page = {"Origin": "http://localhost:3000"}  # a page the server lets in: still only JSON
    for kind, origin in [
        ("text/plain", {}),
        ("application/x-www-form-urlencoded", {}),
        ("text/plain", page),
        ("application/x-www-form-urlencoded", page),
        (None, page),
    ]:
        headers = {**origin, **({"Content-Type": kind} if kind else {})}
        r = httpx2.post(
            f"{server.url}/chat/completions",
            content=b'{"messages": []}',
            headers=headers,
            timeout=60,
        )
        assert r.status_code == 415, (kind, origin)
        assert "Content-Type: application/json" in error(r)["message"]
    assert post(server, headers={"Content-Type": "application/json; charset=utf-8"}).is_success
    # no Origin and no Content-Type (litellm and aider on Ollama's routes): no page sends
    # that, and the body is read as JSON
    r = httpx2.post(f"{server.url[:-3]}/api/chat", content=b'{"messages": []}', timeout=60)
    assert r.status_code == 400 and r.json() == {"error": "messages must be a non-empty array"}


def test_a_huge_body_is_refused_before_it_is_read(server: Serving) -> None:
    big = {"messages": [{"role": "user", "content": "word " * 4_000_000}]}  # 20 MB
    r = post(server, big)
    assert r.status_code == 413 and error(r)["code"] == "request_too_large"
    assert (
        "; this server takes at most 1,048,576 (what its context could use" in (error(r)["message"])
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused once it passes the bound
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(40):
            yield b"word " * 10_000
        yield b'"}]}'

    r = httpx2.post(f"{server.url}/chat/completions", content=chunks(), headers=JSON, timeout=60)
    assert r.status_code == 413
    assert error(r)["message"].startswith(
        "the request body is more than 1,048,576 bytes (sent in chunks); this server takes"
    )


def test_a_prompt_past_the_context_costs_a_context_of_reading(server: Serving) -> None:
    """Inside the body bound, but 100 times the context: refused having read about one
    context's worth, while a normal chat beside it is answered."""
    results: dict[str, httpx2.Response] = {}
    big = {"messages": [{"role": "user", "content": "word " * 150_000}]}
    t = threading.Thread(target=lambda: results.update(big=post(server, big)))
    t.start()
    results["normal"] = post(server)
    t.join(60)
    assert results["normal"].status_code == 200
    r = results["big"]
    assert r.status_code == 400 and error(r)["code"] == "context_length_exceeded"
    read = int(error(r)["message"].split(" is ")[1].split(" tokens")[0].replace(",", ""))
    assert 1_008 < read < 40_000  # past 1,024 - 16, and far short of 150,000 words


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ('{"messages": [{"role": "user", "content": "\\ud800"}]}', "messages[0].content"),
        ('{"prompt": "a\\udfffb"}', "prompt"),
        ('{"messages": [{"role": "user", "content": "hi"}], "stop": ["\\ud83d"]}', "stop[0]"),
    ],
)
def test_text_that_is_not_unicode_is_a_400_naming_it(server: Serving, body: str, where: str):
    path = "completions" if "prompt" in body else "chat/completions"
    r = post(server, content=body.encode(), path=path)
    assert r.status_code == 400 and error(r)["param"] == where
    assert "is not valid Unicode text" in error(r)["message"]


def test_absurd_nesting_is_a_400(server: Serving) -> None:
    r = post(server, content=b"[" * 100_000 + b"]" * 100_000)
    assert r.status_code == 400 and "nested too deeply" in error(r)["message"]


def test_a_client_that_drops_mid_upload_is_one_line(server: Serving) -> None:
    host, port = server.url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port))) as sock:
        head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
        sock.sendall(head + b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
    lines = server.lines(wait_for="while it sent the request")
    assert post(server).status_code == 200
    assert not any("Traceback" in ln or "Exception" in ln for ln in server.lines())
    assert lines


def test_keys_that_are_not_ascii(answer_model: ScriptedModel, tmp_path: Path) -> None:
    env = {"R1CHAT_HOME": str(tmp_path), "KEY": "k\u00e9y"}
    with serving(answer_model.path, "--api-key-env", "KEY", env=env) as s:
        assert post(s, headers={"Authorization": b"Bearer k\xc3\xa9y"}).status_code == 200
        for wrong in (b"Bearer caf\xe9", b"Bearer \xff\xfe", b"Basic k\xc3\xa9y"):
            r = post(s, headers={"Authorization": wrong})
            assert r.status_code == 401 and error(r)["code"] == "invalid_api_key"
        assert not any("Traceback" in ln for ln in s.lines())


def test_hosts_and_origins_are_parsed_strictly() -> None:
    """What a browser cannot send, but a lax parser would read as this machine."""
    from r1chat.serve.door import Door

    door = Door("127.0.0.1")
    assert door.host_problem("localhost:11435@evil.com") is not None
    assert door.host_problem("localhost:11435/x") is not None
    assert door.host_problem("[::1]:80") is None and door.host_problem("LocalHost:1") is None
    for origin in ("http://localhost:3000.evil.com", "http://localhost@evil.com", "null"):
        assert not door.origin_allowed(origin), origin
    for origin in ("http://localhost:3000", "http://[::1]:8080", "https://127.0.0.1/"):
        assert door.origin_allowed(origin), origin
