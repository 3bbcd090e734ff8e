"""A loopback OpenAI-compatible server that streams like vLLM and misbehaves on demand.

`OpenAIServer` answers `GET /v1/models`, `POST /v1/chat/completions` and
`POST /v1/completions` on 127.0.0.1. A chat reply streams as vLLM does with a reasoning
parser: a role chunk, one chunk per reasoning token in `reasoning_content` (or
`reasoning`, or inline `<think>` tags in `content` with `field=None`), one chunk per answer
token in `content`, a chunk with `finish_reason`, a usage chunk, then `data: [DONE]`.
Bodies use chunked transfer encoding, as real servers do.

Faults are queued with `fail(...)` and consumed one per request, in order:

- `Fault(status=429, headers={"Retry-After": "0"})`: an error status with an OpenAI body;
- `Fault(drop_after=3)`: three deltas, then the connection is cut mid-body;
- `Fault(eof_after=3)`: three deltas, then a clean end of body without `[DONE]`;
- `Fault(garbage=b"...")`: a 200 event stream carrying these bytes;
- `Fault(raw=(200, "text/html", b"<html>"))`: any status, content type and body;
- `Fault(delay=2.0)`: wait before the response head; `Fault(stall_after=2)`: two deltas,
  then silence until the client goes away (the time it went is in `disconnects`).

`requests` records every request (method, path, headers, JSON body).
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REASONING = (
    "Okay",
    ",",
    " the",
    " user",
    " wants",
    " two",
    " plus",
    " two",
    ".",
    " That",
    " is",
    " four",
    ".",
)
ANSWER = ("The", " answer", " is", " **", "4", "**", ".")


@dataclass
class Fault:
    status: int | None = None
    message: str = "error"
    headers: dict[str, str] = field(default_factory=dict)
    drop_after: int | None = None
    eof_after: int | None = None
    stall_after: int | None = None
    garbage: bytes | None = None
    raw: tuple[int, str, bytes] | None = None
    delay: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)


class OpenAIServer:
    def __init__(
        self,
        *,
        models: tuple[str, ...] = ("deepseek-ai/DeepSeek-R1",),
        api_key: str | None = None,
        field: str | None = "reasoning_content",
        reasoning: tuple[str, ...] = REASONING,
        answer: tuple[str, ...] = ANSWER,
        continuation: tuple[str, ...] = (" Four", "."),
        completions: bool = True,
        usage: bool = True,
        delta_gap: float = 0.0,
    ) -> None:
        self.models = models
        self.api_key = api_key
        self.field = field
        self.reasoning = reasoning
        self.answer = answer
        self.continuation = continuation
        self.completions = completions
        self.usage = usage
        self.delta_gap = delta_gap
        self.faults: deque[Fault] = deque()
        self.requests: list[Seen] = []
        self.disconnects: list[float] = []
        self.bench_payload: bytes | None = None  # preset event stream for benchmarks
        self._lock = threading.Lock()
        server = self

        class Handler(_Handler):
            owner = server

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def fail(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def next_fault(self) -> Fault | None:
        with self._lock:
            return self.faults.popleft() if self.faults else None

    def chat_posts(self) -> list[Seen]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def __enter__(self) -> OpenAIServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that went away
            super().handle_error(request, client_address)


def chat_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def event(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


BURST_WORDS = ("alpha", "beta", "gamma", "delta", "sigma", "omega", "kappa", "theta", "lambda")


def burst_word(i: int) -> str:
    return f" {BURST_WORDS[i % len(BURST_WORDS)]}{i}"


def burst_payload(n: int, inline: bool) -> bytes:
    """A whole event stream of n deltas (varied words, so no loop guard trips): the first
    half reasoning, the second half answer; then finish, usage and [DONE]."""
    half = n // 2
    parts = [event(chat_chunk({"role": "assistant", "content": ""}))]
    for i in range(n):
        text = burst_word(i)
        if inline:
            if i == 0:
                text = "<think>\n" + text
            elif i == half:
                text = "\n</think>\n\n" + text
            delta = {"content": text}
        else:
            delta = {"reasoning_content": text} if i < half else {"content": text}
        parts.append(event(chat_chunk(delta)))
    parts.append(event(chat_chunk({}, "stop")))
    usage = {"prompt_tokens": 5, "completion_tokens": n, "total_tokens": n + 5}
    parts.append(event({"choices": [], "usage": usage}))
    parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


class _Handler(BaseHTTPRequestHandler):
    owner: OpenAIServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- plumbing ---------------------------------------------------------------------------

    def _record(self, body: Any) -> None:
        self.owner.requests.append(Seen(self.command, self.path, dict(self.headers), body))

    def _send(self, status: int, ctype: str, body: bytes, headers: dict[str, str] | None = None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        body = {"error": {"message": message, "type": "Error", "code": status}}
        self._send(status, "application/json", json.dumps(body).encode(), headers)

    def _start_stream(self, *, chunked: bool = True) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.flush()

    def _chunk(self, data: bytes, chunked: bool = True) -> None:
        if chunked:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            self.wfile.write(data)
        self.wfile.flush()

    def _end(self, chunked: bool = True) -> None:
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    def _cut(self) -> None:
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True

    def _wait_for_disconnect(self, limit: float = 30.0) -> None:
        end = time.monotonic() + limit
        while time.monotonic() < end:
            ready, _, _ = select.select([self.connection], [], [], 0.02)
            if ready:
                try:
                    data = self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    data = b""
                if not data:
                    self.owner.disconnects.append(time.monotonic())
                    self.close_connection = True
                    return

    def _authorized(self) -> bool:
        key = self.owner.api_key
        if key is None:
            return True
        got = self.headers.get("Authorization", "")
        if got == f"Bearer {key}":
            return True
        sent = got.removeprefix("Bearer ")
        # like OpenAI, the message quotes the key it got (r1chat must not repeat it)
        self._error(401, f"Incorrect API key provided: {sent}. You can find your key online.")
        return False

    # -- endpoints ----------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._record(None)
        if not self._authorized():
            return
        if self.path.rstrip("/") == "/v1/models":
            data = [
                {"id": m, "object": "model", "owned_by": "test", "max_model_len": 163840}
                for m in self.owner.models
            ]
            self._send(
                200, "application/json", json.dumps({"object": "list", "data": data}).encode()
            )
        else:
            self._send(404, "application/json", b'{"detail":"Not Found"}')

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw
        self._record(body)
        path = self.path.split("?")[0].rstrip("/")
        if path not in ("/v1/chat/completions", "/v1/completions"):
            self._send(404, "application/json", b'{"detail":"Not Found"}')
            return
        fault = self.owner.next_fault()
        if fault and fault.delay:
            time.sleep(fault.delay)
        if not self._authorized():
            return
        if fault and fault.raw:
            status, ctype, data = fault.raw
            self._send(status, ctype, data)
            return
        if fault and fault.status:
            self._error(fault.status, fault.message, fault.headers)
            return
        if body.get("model") not in self.owner.models:
            self._error(404, f"The model `{body.get('model')}` does not exist.")
            return
        if path == "/v1/completions":
            if not self.owner.completions:
                self._send(404, "application/json", b'{"detail":"Not Found"}')
                return
            self._stream_completion(fault)
        else:
            self._stream_chat(body, fault)

    def _stream_chat(self, body: dict[str, Any], fault: Fault | None) -> None:
        o = self.owner
        if o.bench_payload is not None:
            self._start_stream()
            self._chunk(o.bench_payload)
            self._end()
            return
        chunked = not (fault and fault.eof_after is not None)
        self._start_stream(chunked=chunked)
        if fault and fault.garbage is not None:
            self._chunk(fault.garbage, chunked)
            self._end(chunked)
            return
        deltas: list[dict[str, Any]] = []
        if o.field is None:
            deltas.append({"content": "<think>\n"})
            deltas += [{"content": t} for t in o.reasoning]
            deltas.append({"content": "\n</think>\n\n"})
        else:
            deltas += [{o.field: t} for t in o.reasoning]
        deltas += [{"content": t} for t in o.answer]
        self._chunk(event(chat_chunk({"role": "assistant", "content": ""})), chunked)
        limit = self._limit(fault)
        for i, d in enumerate(deltas):
            if limit is not None and i == limit:
                self._misbehave(fault, chunked)
                return
            try:
                self._chunk(event(chat_chunk(d)), chunked)
            except OSError:
                o.disconnects.append(time.monotonic())
                return
            if o.delta_gap:
                time.sleep(o.delta_gap)
        self._chunk(event(chat_chunk({}, "stop")), chunked)
        if o.usage and (body.get("stream_options") or {}).get("include_usage"):
            usage = {
                "prompt_tokens": 11,
                "completion_tokens": len(deltas) + 1,
                "total_tokens": 12 + len(deltas),
                "prompt_tokens_details": {"cached_tokens": 3},
            }
            self._chunk(event({"id": "chatcmpl-1", "choices": [], "usage": usage}), chunked)
        self._chunk(b"data: [DONE]\n\n", chunked)
        self._end(chunked)

    def _stream_completion(self, fault: Fault | None) -> None:
        self._start_stream()
        limit = self._limit(fault)
        for i, t in enumerate(self.owner.continuation):
            if limit is not None and i == limit:
                self._misbehave(fault, True)
                return
            obj = {
                "id": "cmpl-1",
                "object": "text_completion",
                "choices": [{"index": 0, "text": t, "finish_reason": None}],
            }
            self._chunk(event(obj))
        obj = {"id": "cmpl-1", "choices": [{"index": 0, "text": "", "finish_reason": "stop"}]}
        self._chunk(event(obj))
        self._chunk(b"data: [DONE]\n\n")
        self._end()

    @staticmethod
    def _limit(fault: Fault | None) -> int | None:
        if fault is None:
            return None
        for n in (fault.drop_after, fault.eof_after, fault.stall_after):
            if n is not None:
                return n
        return None

    def _misbehave(self, fault: Fault | None, chunked: bool) -> None:
        assert fault is not None
        if fault.drop_after is not None:
            self._cut()
        elif fault.eof_after is not None:
            self.close_connection = True
        else:
            self._wait_for_disconnect()
