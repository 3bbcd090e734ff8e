"""The remote engine: an OpenAI-compatible server (vLLM, SGLang, llama-server, DeepSeek's
API) streams the reply over Server-Sent Events; r1chat shows it like a local one.

Reasoning comes from wherever the server puts it: a `reasoning_content` / `reasoning`
delta field (a server with a reasoning parser; sent as `Channel.THINKING`, and the
`content` after it as `Channel.ANSWER`) or inline `<think>` tags in `content` (sent as
`Channel.RAW` for the splitter). Earlier turns go out without their reasoning.

Budgets and the loop guard close the reasoning through a continuation: the stream is
stopped and the reply continues from `/completions` with the R1 prompt rendered here,
followed by the reasoning so far and the injected text (the chat endpoint cannot do it:
R1's chat template deletes reasoning from assistant messages). `--no-think` uses the
same route to prefill an empty reasoning. Where the server has no `/completions` for the
model (DeepSeek's API), the reasoning still runs on the server but is no longer shown,
and the answer follows when it comes.

Failures before the first delta that may pass (429, 5xx, a dropped connection) are
retried with backoff; after it, the reply is kept and the error ends it (`run_turn` then
adds a notice and finishes with "error"). One delta counts as one token; a `usage` chunk
(asked for with `stream_options`) corrects the total and gives the prompt size.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from r1chat import __version__
from r1chat.engine.base import Control, EngineInfo, RenderedPrompt, Request, Sampling
from r1chat.engine.remote_http import (
    DATA,
    END,
    ERROR,
    HEAD,
    Endpoint,
    ResponseReader,
    Scrubber,
    error_detail,
    httpx_module,
    is_transient,
    transport_message,
)
from r1chat.engine.sse import SSEDecoder, SSEError
from r1chat.errors import R1ChatError
from r1chat.events import Channel, Delta, PromptProgress
from r1chat.messages import Message, prepare

DEFAULT_TIMEOUT = 300.0
"""Seconds without a byte from the server before giving up (a 671B prefill can be slow)."""
CONNECT_TIMEOUT = 10.0
RETRIES = 3
BACKOFF_S = 0.5  # first retry delay; doubled each time, with jitter
MAX_RETRY_AFTER_S = 30.0
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504, 529})
BURST = 48
"""More deltas than this in one network read: the server is far ahead of us, so runs of
deltas on one channel go out merged (up to GROUP server deltas per Delta). Live
generation arrives a few deltas per read and goes out one Delta per server delta."""
GROUP = 16

USER, ASSISTANT = "<｜User｜>", "<｜Assistant｜>"
EOS = "<｜end▁of▁sentence｜>"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
_NEUTRAL = (("<｜", "<\u200b｜"), ("<think>", "<\u200bthink>"), ("</think>", "</\u200bthink>"))
_SAMPLING_DEFAULTS = Sampling()
_NO_MODEL = re.compile(
    r"model.{0,80}(does ?n[o']t exist|not exist|not found)|(unknown|no such|invalid) model", re.I
)


_Piece = tuple[Channel, str, int]  # channel, text, tokens (0: a marker, no text counted)


class RemoteError(R1ChatError):
    """A failure of the server or the connection; `status` is the HTTP status if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class _Retry(Exception):
    """Nothing of the reply has arrived and the failure may pass: try again."""

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.message, self.delay = message, delay


@dataclass(slots=True)
class _Reply:
    """What one reply has produced so far, across its requests."""

    deltas: int = 0  # deltas yielded (each counted as one token)
    stream_deltas: int = 0  # of them, from the current request
    field_mode: bool = False  # the server sends reasoning in a separate field
    reasoning: list[str] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)  # inline-mode content so far
    closed: bool = False  # r1chat closed the reasoning (budget, loop guard, --no-think)
    degraded: bool = False  # closed, but the server could not continue: reasoning hidden
    answering: bool = False  # field mode: the answer has started
    hiding: bool = False  # reasoning goes on but is not shown (no continuation possible)
    hidden: str = ""  # inline text held while hiding, to find `</think>`
    finish: str | None = None
    usage: dict[str, Any] | None = None
    progress_sent: bool = False


class RemoteEngine:
    """Streams replies from an OpenAI-compatible server; one stream at a time."""

    def __init__(
        self,
        url: str | Endpoint,
        *,
        model: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        retries: int = RETRIES,
        backoff: float = BACKOFF_S,
        prefer: Sequence[str] = (),
    ) -> None:
        self.endpoint = url if isinstance(url, Endpoint) else Endpoint.parse(url)
        self._key = api_key
        self._key_env = api_key_env
        self.scrub = Scrubber(api_key, *(v for _, v in self.endpoint.params))
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self.retries, self.backoff = retries, backoff
        httpx = httpx_module()
        self._httpx = httpx
        headers = {"User-Agent": f"r1chat/{__version__}"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            follow_redirects=False,
        )
        self._usage_option = True  # send stream_options.include_usage (dropped if refused)
        self._completions = True  # /completions works for continuations (until it fails)
        n_ctx = 0
        if model is None:
            try:
                model, n_ctx = self._pick_model(prefer)
            except BaseException:
                self._client.close()
                raise
        self.model = model
        self.info = EngineInfo(model=model, backend="remote", n_ctx=n_ctx)
        self.finish_reason = "stop"

    @property
    def has_key(self) -> bool:
        return bool(self._key)

    # -- models ---------------------------------------------------------------------------

    def list_models(self) -> list[dict[str, Any]]:
        """`GET /models`: the server's model entries (raises RemoteError)."""
        obj = self.get_json("models")
        data = obj.get("data") if isinstance(obj, dict) else None
        if not isinstance(data, list) or not all(
            isinstance(m, dict) and isinstance(m.get("id"), str) for m in data
        ):
            raise RemoteError(self._not_openai("GET /models did not return a model list"))
        return data

    def _pick_model(self, prefer: Sequence[str]) -> tuple[str, int]:
        models = self.list_models()
        if not models:
            raise RemoteError(f"{self.endpoint.shown} serves no models")
        chosen = models[0]
        if len(models) > 1:
            hits = [m for m in models if any(p in m["id"].lower() for p in prefer)]
            if len(hits) != 1:
                names = ", ".join(m["id"] for m in models[:8])
                raise R1ChatError(
                    f"{self.endpoint.shown} serves several models ({names}): "
                    "name one with -m (or model = ... in the remote's config)"
                )
            chosen = hits[0]
        return chosen["id"], _context_of(chosen)

    def get_json(self, path: str, timeout: float | None = None) -> Any:
        """GET a JSON document from the API root, with one-line errors."""
        try:
            r = self._client.get(
                self.endpoint.url(path),
                params=list(self.endpoint.params) or None,
                timeout=timeout if timeout is not None else self._httpx.USE_CLIENT_DEFAULT,
            )
        except self._httpx.HTTPError as e:
            raise RemoteError(self._transport(e, started=False)) from None
        if r.status_code != 200:
            raise RemoteError(
                self._status_message(r.status_code, r.content, f"GET /{path}"), r.status_code
            )
        try:
            return r.json()
        except ValueError:
            raise RemoteError(self._not_openai(f"GET /{path} did not return JSON")) from None

    # -- prompts ----------------------------------------------------------------------------

    def opens_thinking(self, request: Request) -> bool:
        # R1 always reasons first; servers whose template ends with `<think>\n` send no
        # opening tag, and the splitter drops one if the model writes it.
        return request.think

    def messages(self, request: Request) -> list[dict[str, str]]:
        prepared = prepare(request.messages, system=request.system, math=request.math)
        return [{"role": m.role, "content": neutralize(m.content)} for m in prepared]

    def chat_body(self, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": self.messages(request)}
        body.update(sampling_fields(request.sampling))
        body["stream"] = True
        if self._usage_option:
            body["stream_options"] = {"include_usage": True}
        return body

    def render(self, request: Request) -> RenderedPrompt:
        body = self.chat_body(request)
        body.pop("stream_options", None)
        return RenderedPrompt(json.dumps(body, ensure_ascii=False, indent=2))

    # -- generation ---------------------------------------------------------------------------

    def stream(self, request: Request, control: Control) -> Iterator[Delta | PromptProgress]:
        self.finish_reason = "cancelled"
        reply = _Reply()
        # --no-think: the prompt ends `<think>\n`; add an empty reasoning, as the local engine does
        prefill = None if request.think else "\n" + THINK_CLOSE + "\n\n"
        for attempt in range(self.retries + 1):
            try:
                if prefill is not None and self._completions:
                    reader = self._open_continuation(request, prefill, control, reply)
                    if reader is not None:
                        reply.closed = True
                        yield from self._read(reader, request, control, reply, chat=False)
                        return
                    if control.cancelled:
                        return
                reader = self._open("chat/completions", self.chat_body(request), control)
                if reader is None:
                    return
                yield from self._read(reader, request, control, reply, chat=True)
                return
            except _Retry as r:
                if attempt == self.retries:
                    tries = f" ({attempt + 1} tries)" if attempt else ""
                    raise RemoteError(r.message + tries) from None
                if not _sleep(self._delay(attempt, r.delay), control):
                    return

    def _read(
        self,
        reader: ResponseReader,
        request: Request,
        control: Control,
        reply: _Reply,
        *,
        chat: bool,
    ) -> Iterator[Delta | PromptProgress]:
        """Yield the deltas of an open event stream, switching to a continuation when the
        reasoning is closed; sets `finish_reason`."""
        reply.stream_deltas = 0
        source = self._objects(reader, control, reply)
        try:
            while True:
                switched = False
                for batch in source:
                    pieces: list[_Piece] = []
                    for obj in batch:
                        pieces += self._deltas(obj, reply, chat)
                    if len(pieces) > BURST:
                        pieces = _coalesce(pieces)
                    i = 0
                    while i < len(pieces):
                        channel, text, tokens = pieces[i]
                        i += 1
                        if not reply.progress_sent:
                            reply.progress_sent = True
                            yield PromptProgress(0, 0)
                        if not tokens:  # closes the reasoning; counts for neither part
                            yield Delta(text, 0, channel)
                            continue
                        reply.deltas += tokens
                        reply.stream_deltas += tokens
                        if not reply.closed:
                            if channel is Channel.THINKING:
                                reply.reasoning.append(text)
                            elif channel is Channel.RAW:
                                reply.raw.append(text)
                        yield Delta(text, tokens, channel)
                        if control.cancelled:
                            return
                        injection = control.take_injection()
                        if injection is None or reply.closed:
                            continue
                        yield Delta(injection, 0, Channel.RAW, injected=True)
                        reply.closed = True
                        nxt = self._open_continuation(request, injection, control, reply)
                        if control.cancelled:
                            return
                        if nxt is None:  # degrade: the old stream goes on, unshown
                            reply.hiding = reply.degraded = True
                            pieces[i:] = self._hide(pieces[i:], reply)
                            continue
                        source.close()
                        source, chat, switched = self._objects(nxt, control, reply), False, True
                        reply.stream_deltas = 0
                        break
                    if switched:
                        break
                if not switched:
                    break
            if control.cancelled:
                return
            yield from self._finish(reply)
        finally:
            source.close()

    def _hide(self, pieces: list[_Piece], reply: _Reply) -> list[_Piece]:
        """Pieces classified before the reasoning was closed, as they read after it."""
        out: list[_Piece] = []
        for channel, text, tokens in pieces:
            if channel is Channel.ANSWER:
                reply.hiding = False
                out.append((channel, text, tokens))
            elif channel is Channel.RAW and reply.hiding:
                out += self._unhide(reply, text)
            elif channel is Channel.RAW:
                out.append((Channel.ANSWER, text, tokens))
        return out

    def _finish(self, reply: _Reply) -> Iterator[Delta | PromptProgress]:
        usage = reply.usage or {}
        completion = usage.get("completion_tokens")
        if isinstance(completion, int) and reply.stream_deltas and not reply.degraded:
            extra = completion - reply.stream_deltas
            if extra > 0:  # tokens no delta carried (several per event, end of sequence)
                # an empty raw delta adds to whichever part is current, ending nothing
                yield Delta("", extra, Channel.RAW)
        prompt = usage.get("prompt_tokens")
        if isinstance(prompt, int) and prompt > 0 and not reply.closed:
            yield PromptProgress(prompt, prompt, _cached(usage))
        self.finish_reason = "length" if reply.finish == "length" else "stop"

    def _deltas(self, obj: dict[str, Any], reply: _Reply, chat: bool) -> list[_Piece]:
        """The (channel, text, tokens) pieces of one streamed chunk; records finish and usage."""
        choices = obj.get("choices")
        if choices:
            choice = choices[0]
            if not isinstance(choice, dict):
                raise RemoteError(self._not_openai("a streamed chunk had no choices"))
        else:
            usage = obj.get("usage")
            if isinstance(usage, dict):
                reply.usage = usage
            elif choices is None:
                raise RemoteError(self._not_openai("a streamed chunk had no choices"))
            return []
        if obj.get("usage"):
            reply.usage = obj["usage"]
        if choice.get("finish_reason"):
            reply.finish = str(choice["finish_reason"])
        if not chat:  # /completions: everything is answer (the reasoning was closed)
            text = choice.get("text")
            return [(Channel.ANSWER, text, 1)] if isinstance(text, str) and text else []
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            delta = choice.get("message")  # a server that ignored stream=true
            if not isinstance(delta, dict):
                raise RemoteError(self._not_openai("a streamed chunk had no delta"))
        out: list[_Piece] = []
        thought = delta.get("reasoning_content")
        if thought is None:
            thought = delta.get("reasoning")
        if isinstance(thought, str):
            reply.field_mode = True
            if thought:
                if not reply.closed:
                    out.append((Channel.THINKING, thought, 1))
                elif not reply.hiding:  # reasoning after r1chat closed it
                    out.append((Channel.ANSWER, thought, 1))
        text = delta.get("content")
        if isinstance(text, str) and text:
            if reply.field_mode:
                if not reply.answering and not reply.closed:
                    out.append((Channel.ANSWER, "", 0))
                reply.hiding, reply.answering = False, True
                out.append((Channel.ANSWER, text, 1))
            elif reply.hiding:
                out += self._unhide(reply, text)
            else:
                out.append((Channel.RAW, text, 1))
        return out

    @staticmethod
    def _unhide(reply: _Reply, text: str) -> list[_Piece]:
        """Inline text while hiding: drop it up to the model's own `</think>`."""
        held = reply.hidden + text
        end = held.find(THINK_CLOSE)
        if end == -1:
            reply.hidden = held[-len(THINK_CLOSE) :]
            return []
        reply.hiding, reply.hidden = False, ""
        rest = held[end + len(THINK_CLOSE) :]
        return [(Channel.ANSWER, rest, 1)] if rest else []

    def _objects(
        self, reader: ResponseReader, control: Control, reply: _Reply
    ) -> Generator[list[dict[str, Any]], None, None]:
        """The JSON objects of an event stream, a list per network read, up to `[DONE]`;
        closes the reader at the end."""
        if reader.content_type.startswith("application/json"):
            yield from self._whole_json(reader, control)
            return
        decoder = SSEDecoder()
        loads = _loads
        try:
            while True:
                item = reader.get(lambda: control.cancelled)
                if item is None:
                    return
                kind, value = item
                if kind == DATA:
                    try:
                        events = decoder.feed(value)
                    except SSEError as e:
                        raise RemoteError(self._not_openai(str(e))) from None
                elif kind == END:
                    events = decoder.finish()
                elif kind == ERROR:
                    raise self._failure(value, reply)
                else:  # pragma: no cover - HEAD comes once, before
                    continue
                batch: list[dict[str, Any]] = []
                done = False
                for name, data in events:
                    if data == b"[DONE]":
                        done = True
                        break
                    try:
                        obj = loads(data)
                    except ValueError:
                        if batch:
                            yield batch
                        raise self._garbage(data, reply) from None
                    if type(obj) is not dict:
                        if batch:
                            yield batch
                        raise self._garbage(data, reply)
                    if obj.get("error") or name != "message":
                        if batch:
                            yield batch
                        raise self._stream_error(obj, reply)
                    batch.append(obj)
                if batch:
                    yield batch
                if done:
                    return
                if kind == END:
                    if reply.finish is not None:
                        return  # a server that does not send [DONE]
                    if decoder.junk is not None and not reply.deltas:
                        junk = self.scrub(decoder.junk.decode("utf-8", "replace"), 60)
                        raise RemoteError(self._not_openai(f"it sent {junk!r}"))
                    raise self._cut(reply)
        finally:
            reader.close()

    def _whole_json(
        self, reader: ResponseReader, control: Control
    ) -> Iterator[list[dict[str, Any]]]:
        """A server that ignored `stream: true` and sent the whole reply as one document."""
        try:
            body = reader.read_body(lambda: control.cancelled, limit=64 * 1024 * 1024)
        finally:
            reader.close()
        if control.cancelled:
            return
        try:
            obj = json.loads(body)
        except ValueError:
            raise RemoteError(self._not_openai("its reply was not valid JSON")) from None
        if not isinstance(obj, dict):
            raise RemoteError(self._not_openai("its reply was not a JSON object"))
        if obj.get("error"):
            raise RemoteError(f"{self.endpoint.host} failed: {error_detail(body, self.scrub)}")
        yield [obj]

    # -- requests ------------------------------------------------------------------------------

    def _open(self, path: str, body: dict[str, Any], control: Control) -> ResponseReader | None:
        """POST and wait for a 200 event stream; None if cancelled. Raises `_Retry` for a
        failure worth retrying, RemoteError for the others."""
        headers = {"Accept": "text/event-stream"}
        reader = ResponseReader(
            self._client,
            "POST",
            self.endpoint.url(path),
            json=body,
            headers=headers,
            params=self.endpoint.params,
        )
        item = reader.get(lambda: control.cancelled)
        if item is None:
            reader.close()
            return None
        kind, value = item
        if kind == ERROR:
            reader.close()
            if is_transient(value):
                raise _Retry(self._transport(value, started=False))
            raise RemoteError(self._transport(value, started=False))
        assert kind == HEAD
        status = value.status_code
        if status == 200:
            ctype = value.headers.get("content-type", "").lower()
            reader.content_type = ctype
            if "html" in ctype:
                reader.close()
                raise RemoteError(self._not_openai(f"POST /{path} answered with a web page"))
            return reader
        text = reader.read_body(lambda: control.cancelled)
        reader.close()
        detail = error_detail(text, self.scrub)
        if status in (400, 422) and "stream_options" in detail and self._usage_option:
            self._usage_option = False  # an older server: count deltas instead
            body.pop("stream_options", None)
            return self._open(path, body, control)
        message = self._status_message(status, text, f"POST /{path}", detail=detail)
        if status in RETRY_STATUS:
            raise _Retry(message, _retry_after(value.headers.get("retry-after")))
        raise RemoteError(message, status)

    def _open_continuation(
        self, request: Request, injected: str, control: Control, reply: _Reply
    ) -> ResponseReader | None:
        """Continue the reply from `/completions` after `injected` (None if impossible)."""
        if not self._completions:
            return None
        messages = prepare(request.messages, system=request.system, math=request.math)
        prompt = r1_prompt(messages) + _reasoning_so_far(reply) + injected
        body: dict[str, Any] = {"model": self.model, "prompt": prompt}
        sampling = sampling_fields(request.sampling)
        if "max_tokens" in sampling:
            sampling["max_tokens"] = max(1, sampling["max_tokens"] - reply.deltas)
        body.update(sampling)
        body["stream"] = True
        if self._usage_option:
            body["stream_options"] = {"include_usage": True}
        for attempt in range(self.retries + 1):
            try:
                return self._open("completions", body, control)
            except _Retry as r:
                if attempt == self.retries or not _sleep(self._delay(attempt, r.delay), control):
                    return None
            except RemoteError as e:
                if e.status in (400, 404, 405, 422, 501):
                    self._completions = False  # this server cannot continue a reply
                return None
        return None  # pragma: no cover

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_S)
        return self.backoff * (2**attempt) * random.uniform(0.8, 1.2)

    # -- messages -------------------------------------------------------------------------------

    def _transport(self, e: BaseException, *, started: bool) -> str:
        return transport_message(
            e,
            self.endpoint,
            self.scrub,
            connect_timeout=self.connect_timeout,
            read_timeout=self.timeout,
            started=started,
        )

    def _failure(self, e: BaseException, reply: _Reply) -> Exception:
        if not reply.deltas and is_transient(e):
            return _Retry(self._transport(e, started=False))
        return RemoteError(self._transport(e, started=bool(reply.deltas)))

    def _cut(self, reply: _Reply) -> Exception:
        if not reply.deltas:
            return _Retry(f"{self.endpoint.host} closed the stream before the reply started")
        return RemoteError(
            f"{self.endpoint.host} closed the stream mid-reply; the answer is incomplete"
        )

    def _garbage(self, data: bytes, reply: _Reply) -> Exception:
        text = self.scrub(data.decode("utf-8", errors="replace"), 60)
        what = f"it streamed {text!r} where JSON was expected"
        if reply.deltas:
            return RemoteError(
                f"{self.endpoint.host} sent a malformed event mid-reply ({what}); "
                "the answer is incomplete"
            )
        return RemoteError(self._not_openai(what))

    def _stream_error(self, obj: dict[str, Any], reply: _Reply) -> Exception:
        detail = error_detail(json.dumps(obj).encode(), self.scrub) or "unknown error"
        if reply.deltas:
            return RemoteError(
                f"{self.endpoint.host} failed mid-reply: {detail}; the answer is incomplete"
            )
        return RemoteError(f"{self.endpoint.host} failed: {detail}")

    def _not_openai(self, why: str) -> str:
        return f"{self.endpoint.shown} does not look like an OpenAI-compatible API: {why}"

    def _status_message(
        self, status: int, body: bytes, what: str, *, detail: str | None = None
    ) -> str:
        host = self.endpoint.host
        if detail is None:
            detail = error_detail(body, self.scrub)
        said = f": {detail}" if detail else ""
        reason = _reason(status)
        if status in (401, 403):
            if not self._key:
                hint = (
                    "no API key was sent: name the variable holding it with "
                    "--api-key-env NAME (or api_key_env in the remote's config)"
                )
            else:
                hint = f"check the key in ${self._key_env}" if self._key_env else "check the key"
            return f"{host} refused the request ({status} {reason}{said}); {hint}"
        if status in (400, 404) and what.startswith("POST") and _NO_MODEL.search(detail):
            return f"{host} does not serve model {self.model!r}{said}{self._served()}"
        if status == 404:
            return (
                f"{self.endpoint.shown}: {what} not found (404){said}; is this an "
                "OpenAI-compatible API root? (it usually ends in /v1)"
            )
        if 300 <= status < 400:
            return f"{host} redirects {what} ({status}); give the final URL with --endpoint"
        if status == 429:
            return f"{host} is rate-limiting requests (429 {reason}){said}"
        if status >= 500:
            return f"{host} failed ({status} {reason}){said}"
        return f"{host} rejected the request ({status} {reason}){said}"

    def _served(self) -> str:
        try:
            models = [m["id"] for m in self.list_models()]
        except R1ChatError:
            return ""
        return f" (it serves: {', '.join(models[:8])})" if models else ""

    def close(self) -> None:
        self._client.close()


# -- helpers ---------------------------------------------------------------------------------


_scan: Any = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _loads(data: bytes) -> Any:
    """`json.loads` for one event's data, without its per-call overhead (thousands a second)."""
    text = data.decode("utf-8")
    try:
        obj, end = _scan(text, 0)
    except StopIteration:
        return json.loads(text)  # leading white space, or not JSON: the full parser decides
    if end != len(text) and text[end:].strip():
        return json.loads(text)  # raises
    return obj


def _coalesce(pieces: list[_Piece]) -> list[_Piece]:
    """Merge runs of same-channel pieces, GROUP at most; zero-token markers stay apart."""
    out: list[_Piece] = []
    texts: list[str] = []
    channel: Channel | None = None
    count = 0
    for piece in pieces:
        if piece[0] is channel and piece[2] == 1 and count < GROUP:
            texts.append(piece[1])
            count += 1
            continue
        if texts:
            out.append((channel, "".join(texts), count))  # type: ignore[arg-type]
        if piece[2] == 1:
            channel, texts, count = piece[0], [piece[1]], 1
        else:
            out.append(piece)
            channel, texts, count = None, [], 0
    if texts:
        out.append((channel, "".join(texts), count))  # type: ignore[arg-type]
    return out


def neutralize(text: str) -> str:
    """Keep R1 markers in message text from becoming special tokens on the server."""
    if "<" not in text:
        return text
    for marker, safe in _NEUTRAL:
        text = text.replace(marker, safe)
    return text


def r1_prompt(messages: Sequence[Message]) -> str:
    """The R1 prompt as text, up to the opened reasoning (BOS left to the server)."""
    out: list[str] = []
    for m in messages:
        if m.role == "user":
            out.append(USER + neutralize(m.content))
        elif m.role == "assistant":
            out.append(ASSISTANT + neutralize(m.content) + EOS)
    out.append(ASSISTANT + THINK_OPEN + "\n")
    return "".join(out)


def sampling_fields(s: Sampling) -> dict[str, Any]:
    """OpenAI sampling fields; top_k/min_p (vLLM, llama.cpp) only when changed."""
    out: dict[str, Any] = {"temperature": s.temperature, "top_p": s.top_p}
    if s.max_tokens is not None:
        out["max_tokens"] = s.max_tokens
    if s.seed is not None:
        out["seed"] = s.seed
    if s.top_k != _SAMPLING_DEFAULTS.top_k:
        out["top_k"] = s.top_k
    if s.min_p != _SAMPLING_DEFAULTS.min_p:
        out["min_p"] = s.min_p
    return out


def _reasoning_so_far(reply: _Reply) -> str:
    if reply.field_mode:
        return "".join(reply.reasoning)
    text = "".join(reply.raw)
    stripped = text.lstrip()
    if stripped.startswith(THINK_OPEN):
        text = stripped[len(THINK_OPEN) :].removeprefix("\n")
    return text


def _cached(usage: dict[str, Any]) -> int:
    details = usage.get("prompt_tokens_details")
    if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
        return int(details["cached_tokens"])
    hit = usage.get("prompt_cache_hit_tokens")  # DeepSeek's API
    return hit if isinstance(hit, int) else 0


def _context_of(model: dict[str, Any]) -> int:
    """The context length a models entry states: vLLM `max_model_len`, llama-server
    `meta.n_ctx_train`, others `context_length`."""
    for value in (
        model.get("max_model_len"),
        model.get("context_length"),
        (model.get("meta") or {}).get("n_ctx_train"),
    ):
        if isinstance(value, int) and value > 0:
            return value
    return 0


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


def _sleep(seconds: float, control: Control) -> bool:
    """Wait, unless cancelled first (then False)."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if control.cancelled:
            return False
        time.sleep(min(left, 0.05))
    return not control.cancelled


def api_key_from_env(name: str | None, source: str = "--api-key-env") -> str | None:
    """The key held by environment variable `name` (None: no key)."""
    if not name:
        return None
    value = os.environ.get(name)
    if not value:
        raise R1ChatError(f"environment variable {name} (named by {source}) is not set")
    return value.strip()
