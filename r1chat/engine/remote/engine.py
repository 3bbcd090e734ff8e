"""The remote engine: an OpenAI-compatible server (vLLM, SGLang, llama-server, DeepSeek's
API) streams the reply over Server-Sent Events; r1chat shows it like a local one.

The stream's chunks become pieces in `chunks`; earlier turns go out without their
reasoning. Budgets and the loop guard close the reasoning through a continuation
(`continuation`): the stream is stopped and the reply continues from `/completions`.
`--no-think` uses the same route to prefill an empty reasoning. Where the server has no
`/completions` for the model (DeepSeek's API), the reasoning still runs on the server
but is no longer shown, and the answer follows when it comes.

Failures before the first delta that may pass (429, 5xx, a dropped connection) are
retried with backoff; after it, the reply is kept and the error ends it (`run_turn` then
adds a notice and finishes with "error"). One delta counts as one token; a `usage` chunk
(asked for with `stream_options`) corrects the total and gives the prompt size.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Iterator, Sequence
from typing import Any

from r1chat import __version__
from r1chat.core import r1
from r1chat.core.errors import R1ChatError
from r1chat.core.events import Channel, Delta, EngineInfo, PromptProgress
from r1chat.core.messages import prepare
from r1chat.core.request import Control, Request
from r1chat.engine.base import RenderedPrompt
from r1chat.engine.remote import chunks
from r1chat.engine.remote.chunks import BadChunk, Piece, SoFar
from r1chat.engine.remote.continuation import continuation_body, sampling_fields
from r1chat.engine.remote.http import (
    BACKOFF_S,
    DATA,
    END,
    ERROR,
    HEAD,
    RETRIES,
    RETRY_STATUS,
    Endpoint,
    ResponseReader,
    httpx_module,
    is_transient,
    retry_after,
    retry_delay,
    sleep,
)
from r1chat.engine.remote.sse import SSEDecoder, SSEError
from r1chat.engine.remote.wording import RemoteError, Retry, Scrubber, Wording, error_detail

DEFAULT_TIMEOUT = 300.0
"""Seconds without a byte from the server before giving up (a 671B prefill can be slow)."""
CONNECT_TIMEOUT = 10.0
BURST = 48
"""More deltas than this in one network read: the server is far ahead of us, so runs of
deltas on one channel go out merged (up to `chunks.GROUP` server deltas per Delta). Live
generation arrives a few deltas per read and goes out one Delta per server delta."""
_EXTENDED = re.compile(r"\b(top_k|min_p)\b")
"""A refusal that names the sampling fields OpenAI itself does not have."""


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
        self.has_key = bool(api_key)
        self.scrub = Scrubber(api_key, *(v for _, v in self.endpoint.params))
        self.say = Wording(
            self.endpoint,
            self.scrub,
            key_env=api_key_env,
            has_key=self.has_key,
            connect_timeout=connect_timeout,
            read_timeout=timeout,
        )
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
        self._extended = True  # send top_k and min_p (dropped if refused)
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
    def takes_top_k_min_p(self) -> bool:
        """False once the server refused `top_k` / `min_p` (they are then left out)."""
        return self._extended

    # -- models ---------------------------------------------------------------------------

    def list_models(self) -> list[dict[str, Any]]:
        """`GET /models`: the server's model entries (raises RemoteError)."""
        obj = self.get_json("models")
        data = obj.get("data") if isinstance(obj, dict) else None
        if not isinstance(data, list) or not all(
            isinstance(m, dict) and isinstance(m.get("id"), str) for m in data
        ):
            raise RemoteError(self.say.not_openai("GET /models did not return a model list"))
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
        return chosen["id"], chunks.context_of(chosen)

    def _served(self) -> str:
        try:
            models = [m["id"] for m in self.list_models()]
        except R1ChatError:
            return ""
        return f" (it serves: {', '.join(models[:8])})" if models else ""

    def _status(self, status: int, body: bytes, what: str, detail: str | None = None) -> str:
        model = getattr(self, "model", "")
        return self.say.status(status, body, what, model=model, served=self._served, detail=detail)

    def get_json(self, path: str, timeout: float | None = None) -> Any:
        """GET a JSON document from the API root, with one-line errors."""
        try:
            r = self._client.get(
                self.endpoint.url(path),
                params=list(self.endpoint.params) or None,
                timeout=timeout if timeout is not None else self._httpx.USE_CLIENT_DEFAULT,
            )
        except self._httpx.HTTPError as e:
            raise RemoteError(self.say.transport(e, started=False)) from None
        if r.status_code != 200:
            raise RemoteError(self._status(r.status_code, r.content, f"GET /{path}"), r.status_code)
        try:
            return r.json()
        except ValueError:
            raise RemoteError(self.say.not_openai(f"GET /{path} did not return JSON")) from None

    # -- prompts ----------------------------------------------------------------------------

    def opens_thinking(self, request: Request) -> bool:
        # R1 always reasons first; servers whose template ends with `<think>\n` send no
        # opening tag, and the splitter drops one if the model writes it.
        return request.think

    def messages(self, request: Request) -> list[dict[str, str]]:
        prepared = prepare(request.messages, system=request.system, math=request.math)
        return [{"role": m.role, "content": r1.neutralize(m.content)} for m in prepared]

    def chat_body(self, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": self.messages(request)}
        body.update(sampling_fields(request.sampling, extended=self._extended))
        return self._streaming(body)

    def _streaming(self, body: dict[str, Any]) -> dict[str, Any]:
        body["stream"] = True
        if self._usage_option:
            body["stream_options"] = {"include_usage": True}
        return body

    def count_prompt(self, request: Request) -> int:
        raise TypeError("a server's template and tokenizer make its prompt (caps.counts)")

    def prefill(self, request: Request, control: Control) -> int:
        raise TypeError("a server keeps its own cache (caps.prefill)")

    def warm_up(self) -> None:
        raise TypeError("a server warms its own model (caps.in_process)")

    def render(self, request: Request) -> RenderedPrompt:
        body = self.chat_body(request)
        body.pop("stream_options", None)
        return RenderedPrompt(json.dumps(body, ensure_ascii=False, indent=2))

    # -- generation ---------------------------------------------------------------------------

    def stream(self, request: Request, control: Control) -> Iterator[Delta | PromptProgress]:
        if request.sampling.schema is not None:  # a server would hold the reasoning to it too
            raise R1ChatError("a JSON schema for the answer needs a local model")
        if request.tools is not None or any(m.role == "tool" for m in request.messages):
            raise R1ChatError("tool calls need a local model")
        self.finish_reason = "cancelled"
        reply = SoFar()
        # --no-think: the prompt ends `<think>\n`; add an empty reasoning, as the local engine does
        prefill = None if request.think else r1.EMPTY_REASONING
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
            except Retry as r:
                if attempt == self.retries:
                    tries = f" ({attempt + 1} tries)" if attempt else ""
                    raise RemoteError(r.message + tries) from None
                delay = retry_delay(attempt, r.delay, self.backoff)
                if not sleep(delay, lambda: control.cancelled):
                    return

    def _read(
        self,
        reader: ResponseReader,
        request: Request,
        control: Control,
        reply: SoFar,
        *,
        chat: bool,
    ) -> Iterator[Delta | PromptProgress]:
        """Yield the deltas of an open event stream, switching to a continuation when the
        reasoning is closed; sets `finish_reason`."""
        reply.stream_deltas = reply.stream_thinking = 0
        cap = request.sampling.max_tokens  # r1chat's own, whether the server honours it or not
        source = self._objects(reader, control, reply)
        try:
            while True:
                switched = False
                for batch in source:
                    if cap is not None and reply.received >= cap:  # the stream is closed
                        self.finish_reason = "length"
                        return
                    pieces = self._pieces(batch, reply, chat)
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
                        if channel is Channel.THINKING:
                            reply.stream_thinking += tokens
                            if not reply.closed:
                                reply.reasoning.append(text)
                        elif channel is Channel.RAW and not reply.closed:
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
                            reply.start_hiding()
                            pieces[i:] = chunks.hide(pieces[i:], reply)
                            continue
                        source.close()
                        source, chat, switched = self._objects(nxt, control, reply), False, True
                        reply.stream_deltas = reply.stream_thinking = 0
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

    def _pieces(self, batch: list[dict[str, Any]], reply: SoFar, chat: bool) -> list[Piece]:
        """The pieces of one network read's chunks, merged when the server is far ahead."""
        out: list[Piece] = []
        try:
            for obj in batch:
                out += chunks.pieces(obj, reply, chat)
        except BadChunk as e:
            raise RemoteError(self.say.not_openai(str(e))) from None
        return chunks.coalesce(out) if len(out) > BURST else out

    def _finish(self, reply: SoFar) -> Iterator[Delta | PromptProgress]:
        usage = reply.usage or {}
        completion = usage.get("completion_tokens")
        if isinstance(completion, int) and reply.stream_deltas and not reply.degraded:
            extra = completion - reply.stream_deltas
            thought = chunks.reasoning_tokens(usage)
            if thought is not None and reply.stream_thinking:
                # the server says how many were reasoning: those go there, the rest to the
                # answer (an empty delta of a marked channel adds to its part, ending nothing)
                more = min(max(0, thought - reply.stream_thinking), max(0, extra))
                if more:
                    yield Delta("", more, Channel.THINKING)
                extra -= more
            if extra > 0:  # tokens no delta carried (several per event, end of sequence)
                # an empty raw delta adds to whichever part is current, ending nothing
                yield Delta("", extra, Channel.RAW)
        prompt = usage.get("prompt_tokens")
        if isinstance(prompt, int) and prompt > 0 and not reply.closed:
            yield PromptProgress(prompt, prompt, chunks.cached_tokens(usage))
        self.finish_reason = "length" if reply.finish == "length" else "stop"

    def _objects(
        self, reader: ResponseReader, control: Control, reply: SoFar
    ) -> Generator[list[dict[str, Any]], None, None]:
        """The JSON objects of an event stream, a list per network read, up to `[DONE]`;
        closes the reader at the end."""
        if reader.content_type.startswith("application/json"):
            yield from self._whole_json(reader, control)
            return
        decoder = SSEDecoder()
        loads = chunks.loads
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
                        raise RemoteError(self.say.not_openai(str(e))) from None
                elif kind == END:
                    events = decoder.finish()
                elif kind == ERROR:
                    raise self.say.failure(value, reply.deltas)
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
                        raise self.say.garbage(data, reply.deltas) from None
                    if type(obj) is not dict:
                        if batch:
                            yield batch
                        raise self.say.garbage(data, reply.deltas)
                    if obj.get("error") or name != "message":
                        if batch:
                            yield batch
                        raise self.say.stream_error(obj, reply.deltas)
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
                        raise RemoteError(self.say.not_openai(f"it sent {junk!r}"))
                    raise self.say.cut(reply.deltas)
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
            raise RemoteError(self.say.not_openai("its reply was not valid JSON")) from None
        if not isinstance(obj, dict):
            raise RemoteError(self.say.not_openai("its reply was not a JSON object"))
        if obj.get("error"):
            raise RemoteError(f"{self.endpoint.host} failed: {error_detail(body, self.scrub)}")
        yield [obj]

    # -- requests ------------------------------------------------------------------------------

    def _open(self, path: str, body: dict[str, Any], control: Control) -> ResponseReader | None:
        """POST and wait for a 200 event stream; None if cancelled. Raises `Retry` for a
        failure worth retrying, RemoteError for the others."""
        reader = ResponseReader(
            self._client,
            "POST",
            self.endpoint.url(path),
            json=body,
            headers={"Accept": "text/event-stream"},
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
                raise Retry(self.say.transport(value, started=False))
            raise RemoteError(self.say.transport(value, started=False))
        assert kind == HEAD
        status = value.status_code
        if status == 200:
            ctype = value.headers.get("content-type", "").lower()
            reader.content_type = ctype
            if "html" in ctype:
                reader.close()
                raise RemoteError(self.say.not_openai(f"POST /{path} answered with a web page"))
            return reader
        text = reader.read_body(lambda: control.cancelled)
        reader.close()
        detail = error_detail(text, self.scrub)
        if status in (400, 422) and "stream_options" in detail and self._usage_option:
            self._usage_option = False  # an older server: count deltas instead
            body.pop("stream_options", None)
            return self._open(path, body, control)
        if status in (400, 422) and self._extended and _EXTENDED.search(detail):
            self._extended = False  # a strict OpenAI-style server: its own sampling
            body.pop("top_k", None)
            body.pop("min_p", None)
            return self._open(path, body, control)
        message = self._status(status, text, f"POST /{path}", detail=detail)
        if status in RETRY_STATUS:
            raise Retry(message, retry_after(value.headers.get("retry-after")))
        raise RemoteError(message, status)

    def _open_continuation(
        self, request: Request, injected: str, control: Control, reply: SoFar
    ) -> ResponseReader | None:
        """Continue the reply from `/completions` after `injected` (None if impossible)."""
        if not self._completions:
            return None
        body = self._streaming(
            continuation_body(self.model, request, reply, injected, extended=self._extended)
        )
        for attempt in range(self.retries + 1):
            try:
                return self._open("completions", body, control)
            except Retry as r:
                delay = retry_delay(attempt, r.delay, self.backoff)
                if attempt == self.retries or not sleep(delay, lambda: control.cancelled):
                    return None
            except RemoteError as e:
                if e.status in (400, 404, 405, 422, 501):
                    self._completions = False  # this server cannot continue a reply
                return None
        return None  # pragma: no cover

    def close(self) -> None:
        self._client.close()
