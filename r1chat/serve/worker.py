"""The resident model and the queue in front of it: one reply at a time, in one thread.

llama.cpp's context holds one sequence, so requests wait their turn in a bounded queue
(full: the API answers 429). A `Job` carries a request's `Control` (the API cancels it
when the client goes) and hands the reply's events to the event loop as they come.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from r1chat.core.errors import PromptTooLong, R1ChatError
from r1chat.core.events import Channel, Delta, Done, Event, PromptProgress
from r1chat.core.request import Control, Request
from r1chat.core.turn import run_turn
from r1chat.engine.base import TextEngine
from r1chat.serve.requests import BadRequest, Call

Opener = Callable[[str], TextEngine]
"""Loads a model by its id (`engine.factory.open_named` with the server's settings)."""


class Failed:
    """The job ended without a reply: `error` says why, in the API's terms."""

    def __init__(self, error: BadRequest) -> None:
        self.error = error


class Rendered:
    """A dry run's answer: the prompt's text and token ids."""

    def __init__(self, text: str, tokens: tuple[int, ...]) -> None:
        self.text, self.tokens = text, tokens


Item = Event | Failed | Rendered
"""What a job hands the event loop: the reply's events, or why there is none."""


class Job:
    """One request's reply, from the model thread to the event loop.

    The loop is woken once per batch, not per token (a whole reply: once, at its end).
    """

    def __init__(self, call: Call, model: str, what: str, loop: asyncio.AbstractEventLoop) -> None:
        self.call, self.model, self.what = call, model, what  # what: "POST /v1/..."
        self.control = Control()
        self.client_gone = False
        self._loop = loop
        self._items: deque[Item] = deque()
        self._ready = asyncio.Event()
        self._lock = threading.Lock()
        self._waiting = False  # the loop waits in `items()` for the model thread

    def _wanted(self, item: Item) -> bool:
        """Whether the loop takes items once `item` is in: any of a stream's, the last of
        a whole reply's."""
        return self.call.stream or _ended(item)

    # the model thread
    def put(self, item: Item) -> None:
        self._items.append(item)
        if not self._wanted(item):
            return
        with self._lock:
            if not self._waiting:
                return
            self._waiting = False
        self._loop.call_soon_threadsafe(self._ready.set)

    # the event loop
    async def items(self) -> list[Item]:
        """What has come since the last call (waits for at least one item; a whole
        reply's, until it is over)."""
        while not (self._items and self._wanted(self._items[-1])):
            self._ready.clear()
            with self._lock:
                self._waiting = True
            if self._items and self._wanted(self._items[-1]):  # came before `_waiting`
                with self._lock:
                    self._waiting = False
                break
            await self._ready.wait()
        out = []
        while self._items:
            out.append(self._items.popleft())
        return out

    def cancel(self) -> None:
        self.control.cancel()


def _ended(item: Item) -> bool:
    return isinstance(item, (Done, Failed, Rendered))


class Models:
    """Serves jobs with one model resident, loading the one a job names on first use."""

    def __init__(
        self, opener: Opener, *, max_queue: int = 16, log: Callable[[str], None] = print
    ) -> None:
        self._open, self._log = opener, log
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=max_queue)
        self.engine: TextEngine | None = None
        self.resident: str | None = None
        self.running: Job | None = None
        self._swap = threading.Lock()  # held while the resident model changes
        self._prefill = Control()  # the idle-time prefill after a reply, if one runs
        self._seconds = 1.0  # a running average of how long a job takes
        self._thread = threading.Thread(target=self._loop, name="r1chat-serve-model", daemon=True)

    def load(self, model: str) -> TextEngine:
        """Make `model` the resident one (closing the previous); raises R1ChatError."""
        with self._swap:
            if self.resident == model and self.engine is not None:
                return self.engine
            if self.engine is not None:
                self.engine.close()
                self.engine, self.resident = None, None
            self.engine = self._open(model)
            self.resident = model
            return self.engine

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: Job) -> None:
        """Queue `job` (an idle-time prefill gives way); a full queue raises the 429."""
        self._prefill.cancel()
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            wait = max(1, round(self._seconds * (self._queue.qsize() + 1)))
            raise BadRequest(
                f"the server is busy ({self._queue.qsize()} requests waiting); retry later",
                status=429,
                code="rate_limit_exceeded",
                kind="rate_limit_error",
            ).retry_after(wait) from None

    def prompt_problem(self, call: Call, model: str) -> BadRequest | None:
        """A chat prompt too long for the resident model's context, checked before it
        queues (llama.cpp's tokenizer is safe beside a running decode)."""
        if not call.chat or not self._swap.acquire(blocking=False):
            return None
        try:
            engine = self.engine
            if engine is None or self.resident != model:
                return None
            tokens = len(engine.render(call.request).tokens)
            return _too_long(engine, tokens)
        finally:
            self._swap.release()

    def cancel_all(self) -> None:
        """Cancel the running job, every queued one and a prefill (the server is stopping)."""
        self._prefill.cancel()
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.cancel()
                job.put(Failed(_shutting_down()))
        if (running := self.running) is not None:
            running.cancel()

    def stop(self) -> None:
        """`cancel_all`, end the thread, free the model."""
        self.cancel_all()
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        with self._swap:
            if self.engine is not None:
                self.engine.close()
                self.engine = None

    def _loop(self) -> None:
        while (job := self._queue.get()) is not None:
            if job.control.cancelled:  # the client left while it waited
                job.put(Failed(BadRequest("cancelled", status=499)))
                continue
            self.running = job
            start = time.monotonic()
            try:
                self._serve(job)
            finally:
                self.running = None
                self._seconds = 0.8 * self._seconds + 0.2 * (time.monotonic() - start)

    def _serve(self, job: Job) -> None:
        try:
            engine = self.load(job.model)
        except R1ChatError as e:
            job.put(Failed(BadRequest(str(e), "model", status=500, kind="server_error")))
            return
        call = job.call
        if call.dry_run:
            rendered = engine.render(call.request)
            job.put(Rendered(rendered.text, rendered.tokens))
            return
        source: Any = engine if call.chat else _RawPrompt(engine, call.prompt or "")
        done: Done | None = None
        try:
            for event in run_turn(source, call.request, job.control, call.guards):
                job.put(event)
                done = event if isinstance(event, Done) else done
            if job.client_gone and isinstance(event, Done):
                tokens = event.stats.thinking_tokens + event.stats.answer_tokens
                self._log(f"{job.what} · the client went away after {tokens:,} tokens; "
                          "generation stopped")  # fmt: skip
        except PromptTooLong as e:
            job.put(Failed(BadRequest(str(e), "messages", code="context_length_exceeded")))
        except R1ChatError as e:
            job.put(Failed(BadRequest(str(e), status=500, kind="server_error")))
        except Exception as e:  # a bug of ours: the server goes on with the next request
            message = f"internal error: {type(e).__name__}: {e}"
            job.put(Failed(BadRequest(message, status=500, kind="server_error")))
        if call.chat and done is not None and done.goes_on:
            self._prefill_next(engine, call.request, done.content)

    def _prefill_next(self, engine: TextEngine, request: Request, answer: str) -> None:
        """A client that goes on with this conversation sends it back with the answer:
        evaluate that now, until the next request arrives (`submit` cancels it)."""
        if not self._queue.empty():
            return
        self._prefill = control = Control()
        try:
            engine.prefill(request.answered(answer), control)
        except Exception:  # an optimisation: the next prompt reads it all instead
            return


class _RawPrompt:
    """A `/v1/completions` prompt as a turn's source: all of it answer, nothing split."""

    def __init__(self, engine: TextEngine, prompt: str) -> None:
        self.engine, self.prompt = engine, prompt

    @property
    def finish_reason(self) -> str:
        return self.engine.finish_reason

    def opens_thinking(self, request: Request) -> bool:
        return False

    def stream(self, request: Request, control: Control) -> Iterator[Delta | PromptProgress]:
        for item in self.engine.complete(self.prompt, request.sampling, control):
            if isinstance(item, Delta):
                yield Delta(item.text, item.tokens, Channel.ANSWER, item.injected)
            else:
                yield item


def _too_long(engine: TextEngine, tokens: int) -> BadRequest | None:
    from r1chat.core.request import ANSWER_ROOM

    n_ctx = engine.info.n_ctx
    if tokens + ANSWER_ROOM <= n_ctx:
        return None
    return BadRequest(
        f"the prompt is {tokens:,} tokens but the context holds {n_ctx:,} "
        "(start the server with a larger --ctx, or send less)",
        "messages",
        code="context_length_exceeded",
    )


def _shutting_down() -> BadRequest:
    return BadRequest("the server is shutting down", status=503, kind="server_error")
