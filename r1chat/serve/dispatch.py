"""Requests to the model host, for `r1chat serve`: `Dispatcher` sends each request's job to
the model host (`host.ModelHost`: the model in a child process, so a crash inside
llama.cpp fails the replies in progress and the server goes on), answers 429 when too many
wait, keeps track of the resident model and unloads it when idle; a `Ticket` carries one
request's items from the host to the event loop (a request's job, seen from the server).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from r1chat.config import paths
from r1chat.config.settings import Settings
from r1chat.core.errors import R1ChatError
from r1chat.core.events import Done, EngineInfo
from r1chat.core.overflow import Overflow
from r1chat.core.request import ANSWER_ROOM, DEFAULT_CTX
from r1chat.host.commands import Load, Model, Reply, Start
from r1chat.host.model_host import ModelHost, Put
from r1chat.host.outcomes import (
    Failed,
    HostLost,
    Item,
    JobEnded,
    Loaded,
    LoadFailed,
    Rendered,
    Started,
    Why,
)
from r1chat.serve.call import Call
from r1chat.serve.errors import ApiError

CONTEXT_STEP = 8192
"""A grown context is a multiple of this."""
REPLY_ROOM = 4096
"""What a context grown for a prompt keeps free for the reply."""


def serve_log() -> Path:
    """The model process's own output, and how it ended."""
    return paths.log_dir() / "serve.log"


class Ticket:
    """One request's reply, from the model host to the event loop.

    The loop is woken once per batch of items, not per token (a whole reply's: once, at
    its end).
    """

    def __init__(self, call: Call, model: str, what: str, loop: asyncio.AbstractEventLoop) -> None:
        self.call, self.model, self.what = call, model, what  # what: "POST /v1/..."
        self.id = 0  # given by `Dispatcher.submit`
        self.client_gone = False
        self.resized = False  # the context was grown for it once
        self.started = False  # the model host began it
        self.ended = False  # its last item came
        self.cancelled = False
        self.on_cancel: Callable[[], None] = lambda: None
        self._loop = loop
        self._items: deque[Item] = deque()
        self._ready = asyncio.Event()
        self._lock = threading.Lock()
        self._waiting = False  # the loop waits in `items()` for the host

    def _wanted(self, item: Item) -> bool:
        """Whether the loop takes items once `item` is in: any of a stream's, the last of
        a whole reply's."""
        return self.call.stream or _ends(item)

    # the host's thread
    def put(self, item: Item) -> None:
        self.ended = self.ended or _ends(item)
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
        """Stop generating (the client left, a stop string came, the server stops)."""
        if not self.cancelled and not self.ended:
            self.cancelled = True
            self.on_cancel()


def _ends(item: Item) -> bool:
    return isinstance(item, (Done, Failed, Rendered))


class Dispatcher:
    """The jobs sent to the model host and the model it holds; the model a ticket names is
    loaded on first use (one is resident at a time), from the spec `spec_for(model)`
    gives."""

    def __init__(
        self,
        settings: Settings,
        spec_for: Callable[[str], str],
        *,
        max_queue: int = 16,
        keep_alive: float = -1.0,
        log: Callable[[str], None] = print,
        host: Callable[[Put], ModelHost] | None = None,
        largest: Callable[[str, Settings], int] | None = None,
    ) -> None:
        """`keep_alive`: seconds an idle model stays loaded (negative: for good). `host`
        makes the model host from the inbox it reports to (default: a model process
        that opens local models; tests give one on threads with an engine of their own).
        `largest(spec, settings)`: the most context a model can have here; with it, a
        prompt or a client's `num_ctx` over the context reloads the model at one that fits
        (`context_for`), instead of a 400."""
        self.settings, self._spec_for, self._log = settings, spec_for, log
        self._largest = largest
        self._n_ctx = settings.n_ctx or DEFAULT_CTX
        self.max_queue = max_queue
        self.keep_alive = keep_alive
        self.expires_at: float | None = None  # when the idle model is unloaded (time.time())
        self._idle = 0  # counts idle spells: a timer from an earlier one does nothing
        self._timer: threading.Timer | None = None
        self.resident: str | None = None
        self.info: EngineInfo | None = None
        self._lock = threading.Lock()
        self._tickets: dict[int, Ticket] = {}  # sent and not ended
        self._loads: dict[int, tuple[threading.Event, list[Item]]] = {}
        self._seconds = 1.0  # a running average of how long a ticket takes
        self._started_at: dict[int, float] = {}
        self._host = (host or _model_process)(self._put)

    # -- the event loop's side -----------------------------------------------------------

    def model(self, name: str) -> Model:
        """What the host loads for `name`: the server's settings, opening its spec."""
        return Model(replace(self.settings, model=self._spec_for(name)), name)

    def load(self, name: str) -> EngineInfo:
        """Make model `name` the resident one and wait until it is (the server's start);
        raises R1ChatError with the reason it cannot load."""
        load_id = self._host.next_id()
        done, result = threading.Event(), list[Item]()
        with self._lock:
            self._loads[load_id] = (done, result)
        self._host.send(Load(load_id, self.model(name)))
        done.wait()
        item = result[0]
        if isinstance(item, LoadFailed):
            raise R1ChatError(item.message)
        assert isinstance(item, Loaded)
        return item.info

    def submit(self, ticket: Ticket) -> None:
        """Send `ticket` to the model host; a full queue raises the 429, a `num_ctx` over
        what fits here a 400."""
        call = ticket.call
        if call.context is not None and call.context > self.context():
            n_ctx, largest = self.context_for(ticket.model, call.context, 0)
            if n_ctx is None:
                raise ApiError(
                    f"options.num_ctx {call.context:,} is more context than {ticket.model} "
                    f"can have on this machine (at most {largest:,})",
                    "options.num_ctx",
                    code="context_length_exceeded",
                )
            self._grow(ticket, n_ctx, call.context)
        with self._lock:
            waiting = sum(1 for j in self._tickets.values() if not j.started)
            if waiting >= self.max_queue:
                wait = max(1, round(self._seconds * (waiting + 1)))
                raise ApiError(
                    f"the server is busy ({waiting} requests waiting); retry later",
                    status=429,
                    code="rate_limit_exceeded",
                    kind="rate_limit_error",
                ).retry_after(wait)
            ticket.id = self._host.next_id()
            self._idle += 1  # a ticket: no unloading now
            self.expires_at = None
            ticket.on_cancel = lambda: self._host.cancel(ticket.id)
            self._tickets[ticket.id] = ticket
        self._send(ticket)

    def _send(self, ticket: Ticket) -> None:
        call = ticket.call
        self._host.send(
            Reply(
                ticket.id,
                self.model(ticket.model),
                call.request,
                call.guards,
                raw=call.prompt,
                dry_run=call.dry_run,
                overflow=Overflow() if call.truncate else None,
                sizes=self._largest is not None,
            )
        )

    def context_for(self, name: str, tokens: int, room: int) -> tuple[int | None, int]:
        """The context to load model `name` at for `tokens` with `room` to spare: a
        multiple of `CONTEXT_STEP` (so a growing conversation reloads rarely), at most the
        largest that fits here (None when that is too small: for a prompt, with no room
        to answer); and that largest."""
        if self._largest is None:
            return None, self.context()
        largest = self._largest(self._spec_for(name), self.settings)
        if tokens + (ANSWER_ROOM if room else 0) > largest:
            return None, largest
        return min(-(-(tokens + room) // CONTEXT_STEP) * CONTEXT_STEP, largest), largest

    def _grow(self, ticket: Ticket, n_ctx: int, tokens: int) -> None:
        """Replies have `n_ctx` from now on (the model reloads at it with this ticket's
        job): `tokens` need it."""
        with self._lock:
            self.settings = replace(self.settings, n_ctx=n_ctx)
            self._n_ctx = n_ctx
        self._log(
            f"{ticket.what} · {tokens:,} tokens: {ticket.model} loads again with a "
            f"{n_ctx:,}-token context"
        )

    def context(self) -> int:
        """The context each reply has (the loaded model's, else the settings')."""
        info = self.info
        return info.n_ctx if info is not None else self._n_ctx

    def idle_for(self, seconds: float) -> None:
        """Unload the model once it has been idle `seconds` (now for 0; never for a
        negative number); a ticket coming meanwhile keeps it."""
        with self._lock:
            self._idle += 1
            idle = self._idle
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            busy = bool(self._tickets)
            self.expires_at = None if seconds < 0 else time.time() + seconds
        if seconds < 0 or busy:
            return
        if seconds == 0:
            self._unload(idle)
            return
        self._timer = threading.Timer(seconds, self._unload, (idle,))
        self._timer.daemon = True
        self._timer.start()

    def _unload(self, idle: int) -> None:
        """End the model process (its memory goes back to the system); the next ticket
        starts a new one, which loads the model again."""
        with self._lock:
            if idle != self._idle or self._tickets or self.resident is None:
                return
            model, self.resident, self.info, self.expires_at = self.resident, None, None, None
        self._host.stop(timeout=30.0)
        self._log(f"unloaded {model} (idle); the next request loads it again")

    def counts(self) -> tuple[int, int]:
        """(replies running, requests waiting)."""
        with self._lock:
            running = sum(1 for j in self._tickets.values() if j.started)
            return running, len(self._tickets) - running

    def cancel_all(self) -> None:
        """Cancel every ticket (the server is stopping)."""
        with self._lock:
            tickets = list(self._tickets.values())
        for ticket in tickets:
            ticket.cancel()

    def stop(self) -> None:
        """`cancel_all`, then end the model process (freeing the model)."""
        if self._timer is not None:
            self._timer.cancel()
        self.cancel_all()
        self._host.stop(timeout=30.0)

    # -- the host's thread ---------------------------------------------------------------

    def _put(self, entry: tuple[int, Item]) -> None:
        job_id, item = entry
        if isinstance(item, Loaded):
            self.resident, self.info = item.info.model, item.info
            self._n_ctx = item.info.n_ctx
        elif isinstance(item, HostLost):
            self.resident, self.info = None, None
        with self._lock:
            waiter = self._loads.get(job_id)
            ticket = self._tickets.get(job_id)
        if waiter is not None:
            if isinstance(item, (Loaded, LoadFailed)):
                waiter[1].append(item)
            elif isinstance(item, JobEnded):
                with self._lock:
                    self._loads.pop(job_id, None)
                waiter[0].set()
            return
        if ticket is None:
            return
        if isinstance(item, Started):
            ticket.started = True
            self._started_at[job_id] = time.monotonic()
        elif isinstance(item, Failed) and item.why is Why.TOO_LONG and item.tokens:
            if (refusal := self._resized(ticket, item)) is not None:
                ticket.put(refusal)
        elif isinstance(item, JobEnded):
            self._ended(ticket)
        else:
            if isinstance(item, Done) and ticket.client_gone:
                tokens = item.stats.thinking_tokens + item.stats.answer_tokens
                self._log(
                    f"{ticket.what} · the client went away after {tokens:,} tokens; "
                    "generation stopped"
                )
            elif isinstance(item, Failed) and item.why is Why.CRASHED:
                self._log(
                    f"{ticket.what} 500 · {ticket.model} · the model process {item.cause}; "
                    "it is started again for the next request"
                )
            ticket.put(item)

    def _resized(self, ticket: Ticket, failed: Failed) -> Failed | None:
        """A prompt of `failed.tokens`, too long for the context: the ticket goes again with
        a context that fits it, if one does (once); else the refusal, saying the most this
        machine fits."""
        n_ctx, largest = self.context_for(ticket.model, failed.tokens, REPLY_ROOM)
        if ticket.resized or n_ctx is None or n_ctx <= self.context():
            message = (
                f"the prompt is {failed.tokens:,} tokens, and {ticket.model} can have at most "
                f"{largest:,} on this machine; send less"
            )
            return replace(failed, message=message)
        self._grow(ticket, n_ctx, failed.tokens)
        with self._lock:
            self._tickets.pop(ticket.id, None)
            self._started_at.pop(ticket.id, None)
            ticket.id, ticket.resized, ticket.started = self._host.next_id(), True, False
            self._tickets[ticket.id] = ticket
        self._send(ticket)
        return None

    def _ended(self, ticket: Ticket) -> None:
        with self._lock:
            self._tickets.pop(ticket.id, None)
            start = self._started_at.pop(ticket.id, None)
            idle = not self._tickets
        if start is not None:
            self._seconds = 0.8 * self._seconds + 0.2 * (time.monotonic() - start)
        if idle:
            alive = ticket.call.keep_alive
            self.idle_for(self.keep_alive if alive is None else alive)
        if not ticket.ended:  # (no reply and no reason: say so rather than hang)
            ticket.put(Failed("the reply ended without an answer", Why.BUG))


def _model_process(put: Put) -> ModelHost:
    """The server's model host: local models in a child process."""
    from r1chat.launch.engines import open_served

    return ModelHost.in_process(put, Start(open_served), serve_log)
