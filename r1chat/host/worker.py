"""Where the engine runs: `Worker` holds it and carries out the model host's commands.

It lives in the model process (`host.child`) or, for tests, on threads of the front end's
own process (`ModelHost.in_thread`); either way it reports `(job_id, item)` pairs through
`put` (`host.outcomes`), and nothing here knows HTTP or the screen. Its threads:

- the caller's (`handle`): commands arrive in order. A reply for the resident model has
  its request fitted to the context and its prompt read into tokens on a thread of its
  own as it arrives (`_prepare`, under a `Reading`: a prompt too long is refused at once,
  having read no more than a context's worth, and one whose asker left stops), so it
  holds up neither other arrivals nor the replies that run.
- the model thread (`_model_loop`): jobs in the order they are ready. A job for a model
  that is not resident waits for the replies on the old one, then loads it; each reply
  then starts on a thread of its own once one of the engine's sequences is free
  (`caps.sequences`: several on a `BatchEngine`, one otherwise).
- a thread per running reply (`_run`): the turn's events, saved to History as they
  stream when the reply has a row there; after it, until the next job arrives, the
  conversation with its answer is read ahead (idle-time prefill), so the next prompt
  only reads its new message.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from r1chat.core.errors import BadSchema, PromptCancelled, PromptTooLong, R1ChatError
from r1chat.core.events import Channel, Delta, Done, PromptProgress
from r1chat.core.messages import Message
from r1chat.core.overflow import Overflow, fit
from r1chat.core.request import Control, Reading, Request
from r1chat.core.turn import Source, run_turn
from r1chat.engine.base import Engine, TextEngine
from r1chat.history.store import History
from r1chat.host.commands import Cancel, Command, Job, Load, Measure, Model, Quit, Reply, Start
from r1chat.host.fitting import fit_request, token_counter
from r1chat.host.outcomes import (
    Accepted,
    ContextUsed,
    Failed,
    Item,
    JobEnded,
    LeftOut,
    Loaded,
    LoadFailed,
    Loading,
    Prefilled,
    Rendered,
    Started,
    Why,
)
from r1chat.host.saver import SAVE_INTERVAL_S, Backlog, Saver

log = logging.getLogger("r1chat.host")


@dataclass(eq=False)
class _Job:
    command: Job
    control: Control
    request: Request | None = None  # the reply's request as sent (the overflow policy applied)
    prompt: list[int] | None = None  # its tokens, read ahead
    left_out: int = 0  # exchanges the overflow policy left out
    refused: bool = False  # `_prepare` answered it (too long)


class Worker:
    """The engine and the threads around it (see the module's docstring)."""

    def __init__(
        self, start: Start, put: Callable[[tuple[int, Item]], None], history: History | None = None
    ) -> None:
        """`history`: the History replies are saved through (else the one `start` names,
        opened here and closed by `stop`)."""
        self.put = put
        self._open_engine = start.open_engine
        self._owns_history = history is None and start.history is not None
        if self._owns_history:
            assert start.history is not None
            history = History(start.history)
        self.history = history
        self.backlog = Backlog(history, put) if history is not None else None
        self.engine: Engine | None = None
        self.resident: Model | None = None
        self._swap = threading.Lock()  # held while the engine changes
        self._reading = 0  # prompts being read (the engine may not change meanwhile)
        self._read = threading.Condition(self._swap)
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._controls: dict[int, Control] = {}
        self._arrivals = 0  # jobs that arrived: a prefill starts only if none came since
        self._prefills: set[Control] = set()
        self._prefill_lock = threading.Lock()
        self._running = 0  # replies (and their prefills) on their threads
        self._ran = threading.Condition()
        self._thread = threading.Thread(target=self._model_loop, name="r1chat-model", daemon=True)
        self._thread.start()

    # -- commands ------------------------------------------------------------------------

    def handle(self, command: Command) -> bool:
        """Carry out `command` (the one dispatcher); False once it was `Quit`."""
        match command:
            case Reply():
                self._reply(command)
            case Load():
                self._arrived()
                self._jobs.put(_Job(command, self._control(command.job)))
            case Measure():
                self._jobs.put(_Job(command, self._control(command.job)))
            case Cancel(job=job):
                if (control := self._controls.get(job)) is not None:
                    control.cancel()
            case Quit():
                return False
        return True

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every job (replies end as stopped and are saved so), close the engine;
        what could never be saved is said (`SaveNotice`)."""
        self._arrived()
        for control in list(self._controls.values()):
            control.cancel()
        self._jobs.put(None)
        self._thread.join(timeout)
        self._drain(timeout)
        if self.backlog is not None:
            for line in self.backlog.give_up():
                log.error("%s", line)
        with self._swap:
            if self.engine is not None:
                self.engine.close()
                self.engine, self.resident = None, None
        if self._owns_history and self.history is not None:
            self.history.close()

    def _control(self, job_id: int) -> Control:
        control = self._controls[job_id] = Control()
        return control

    def _arrived(self) -> None:
        """A job came: a prefill gives way at once (what it read stays cached)."""
        with self._prefill_lock:
            self._arrivals += 1
            for control in self._prefills:
                control.cancel()

    def _reply(self, command: Reply) -> None:
        self._arrived()
        job = _Job(command, self._control(command.job))
        if command.raw is None and not command.dry_run:
            threading.Thread(target=self._prepare, args=(job,), daemon=True).start()
        else:
            self.put((command.job, Accepted()))
            self._jobs.put(job)

    def _prepare(self, job: _Job) -> None:
        """Fit and read a reply's prompt now if its model is resident (beside the running
        replies: llama.cpp's tokenizer does not touch the context), then queue it; one
        that does not fit is refused here. For another model, it is done once that model
        is loaded."""
        with self._swap:
            engine = self.engine if self._serves(job.command) else None
            if engine is not None:
                self._reading += 1
        if engine is not None:
            try:
                self._ready(engine, job)
            except PromptTooLong as e:
                job.refused = True
                self.put((job.command.job, self._too_long(engine, job, e)))
            except Exception:
                pass  # said when the reply runs (or, cancelled, when it would)
            finally:
                with self._swap:
                    self._reading -= 1
                    self._read.notify_all()
        if not job.refused:
            self.put((job.command.job, Accepted()))
        self._jobs.put(job)

    # -- the model thread ----------------------------------------------------------------

    def _next(self) -> _Job | None:
        """The next job; where replies are saved, the saves still owed (a full disk) are
        retried each second meanwhile."""
        backlog = self.backlog
        while True:
            try:
                return self._jobs.get(timeout=SAVE_INTERVAL_S if backlog is not None else None)
            except queue.Empty:
                if backlog is not None and backlog.pending:
                    backlog.retry()

    def _model_loop(self) -> None:
        while (job := self._next()) is not None:
            try:
                self._take(job)
            except BaseException:  # pragma: no cover - every job catches its own errors
                log.error("model thread:\n%s", traceback.format_exc())
                self._end(job)

    def _take(self, job: _Job) -> None:
        c = job.command
        if isinstance(c, Reply) and (job.refused or job.control.cancelled):
            if not job.refused:
                self._never_started(job)
            return self._end(job)
        engine = self._engine_for(job)
        if engine is None or isinstance(c, Load):
            return self._end(job)
        if isinstance(c, Measure):
            self._measure(engine, c.job, c.messages, c.request, c.overflow)
            return self._end(job)
        with self._ran:
            while self._running >= engine.info.caps.sequences:
                self._ran.wait()
            self._running += 1
        self.put((c.job, Started()))
        threading.Thread(target=self._run, args=(engine, job), daemon=True).start()

    def _engine_for(self, job: _Job) -> Engine | None:
        """The engine for the job's model: the resident one, else (not for a measure) the
        model loaded once no reply runs on the old one; None when it cannot be."""
        c = job.command
        engine = self.engine
        if engine is not None and self._serves(c):
            if isinstance(c, Load):
                self.put((c.job, Loaded(engine.info, 0.0)))
            return engine
        if isinstance(c, Measure):
            return None
        self._drain()
        if isinstance(c, Reply):
            self.put((c.job, Started()))  # a model that crashes as it loads fails this job
        return self._load(job)

    def _load(self, job: _Job) -> Engine | None:
        c = job.command
        model = c.model
        with self._swap:
            while self._reading:  # a prompt read on the old engine: it ends first
                self._read.wait()
            if self.engine is not None:
                self.engine.close()
                self.engine, self.resident = None, None
            self.put((c.job, Loading(model.label)))
            start = time.perf_counter()
            try:
                self.engine = self._open_engine(model.settings, model.name)
                if self.engine.info.caps.in_process:  # (its first reply not slower)
                    self.engine.warm_up()
            except R1ChatError as e:
                message = str(e)
            except Exception as e:  # a bug or an unexpected file: still one readable line
                log.error("model load failed:\n%s", traceback.format_exc())
                message = f"cannot load {model.label}: {type(e).__name__}: {e}"
            else:
                self.resident = model
                self.put((c.job, Loaded(self.engine.info, time.perf_counter() - start)))
                return self.engine
        if isinstance(c, Load):
            self.put((c.job, LoadFailed(message)))
        else:
            self.put((c.job, Failed(message, Why.LOAD)))
        return None

    def _serves(self, c: Job) -> bool:
        """Whether the resident model answers `c` (a load wants exactly its model)."""
        resident = self.resident
        if resident is None:
            return False
        return resident == c.model if isinstance(c, Load) else resident.serves(c.model)

    def _drain(self, timeout: float | None = None) -> None:
        """Wait until no reply runs (at most `timeout` seconds)."""
        with self._ran:
            self._ran.wait_for(lambda: not self._running, timeout)

    def _end(self, job: _Job) -> None:
        self._controls.pop(job.command.job, None)
        self.put((job.command.job, JobEnded()))

    def _never_started(self, job: _Job) -> None:
        """A reply stopped while it waited: it ends as stopped, and is saved so."""
        assert isinstance(job.command, Reply)
        stopped = Done("", "", "cancelled")
        self.put((job.command.job, stopped))
        if (saver := self._saver(job.command)) is not None:
            saver.finish(stopped)

    # -- a reply's thread ----------------------------------------------------------------

    def _run(self, engine: Engine, job: _Job) -> None:
        c = job.command
        assert isinstance(c, Reply)
        done: Done | None = None
        try:
            done = self._generate(engine, job)
            if done is not None and c.measure and c.overflow is not None:
                whole = c.request.answered(done.content)
                self._measure(engine, c.job, whole.messages, c.request, c.overflow)
        finally:
            with self._prefill_lock:
                arrivals = self._arrivals
            self._end(job)
        try:
            ahead = c.follow_up and c.raw is None and engine.info.caps.prefill
            if done is not None and done.goes_on and ahead:
                assert job.request is not None
                self._prefill(engine, c.job, job.request.answered(done.content), arrivals)
        finally:
            with self._ran:
                self._running -= 1
                self._ran.notify_all()

    def _generate(self, engine: Engine, job: _Job) -> Done | None:
        """Run the reply, putting its events (or why there are none); its `Done`."""
        c = job.command
        assert isinstance(c, Reply)
        saver = self._saver(c)
        done: Done | None = None
        try:
            request = self._ready(engine, job)
            if c.dry_run:
                rendered = engine.render(request)
                caps = engine.info.caps
                count = len(rendered.tokens) if caps.tokens else 0
                if not count and caps.counts:
                    count = engine.count_prompt(request)
                self.put((c.job, Rendered(rendered.text, rendered.tokens, count)))
                return None
            for event in run_turn(self._source(engine, job), request, job.control, c.guards):
                if isinstance(event, Done):
                    event.stats.turns_left_out = job.left_out
                    done = event
                self.put((c.job, event))
                if saver is not None:
                    saver.feed(event)
        except PromptTooLong as e:
            self.put((c.job, self._too_long(engine, job, e)))
        except BadSchema as e:
            self.put((c.job, Failed(str(e), Why.BAD_SCHEMA)))
        except PromptCancelled:
            self.put((c.job, Failed("cancelled", Why.CANCELLED)))
        except R1ChatError as e:
            self.put((c.job, Failed(str(e), Why.ERROR)))
        except Exception as e:  # a bug of ours: the host goes on with the next job
            log.error("reply failed:\n%s", traceback.format_exc())
            self.put((c.job, Failed(f"internal error: {type(e).__name__}: {e}", Why.BUG)))
        if done is not None and saver is not None:
            saver.finish(done)
        return done

    def _ready(self, engine: Engine, job: _Job) -> Request:
        """The request to send (the oldest exchanges left out where the overflow policy
        says so) and, for an engine that works in tokens, its prompt read into them
        (refusing one that does not fit); each done once."""
        c = job.command
        assert isinstance(c, Reply)
        if job.request is None:
            request = c.request
            if c.overflow is not None:
                request, job.left_out = fit_request(engine, request, c.guards, c.overflow)
                if job.left_out:
                    self.put((c.job, LeftOut(job.left_out, c.overflow.keep_first)))
            job.request = request
        if job.prompt is None and c.raw is None and not c.dry_run and engine.info.caps.tokens:
            text: TextEngine = engine  # type: ignore[assignment]
            reading = Reading(engine.info.n_ctx, job.control)
            job.prompt = text.prompt_tokens(job.request, reading)
        return job.request

    def _too_long(self, engine: Engine, job: _Job, error: PromptTooLong) -> Failed:
        """A prompt that does not fit; its size, where the reply asked for it and the
        engine can count it within what the model was trained for."""
        c = job.command
        assert isinstance(c, Reply)
        tokens, info = 0, engine.info
        if c.sizes and info.caps.tokens and info.trained_ctx > info.n_ctx:
            text: TextEngine = engine  # type: ignore[assignment]
            reading = Reading(info.trained_ctx, job.control)
            with contextlib.suppress(R1ChatError):  # beyond training: no size helps
                tokens = len(text.prompt_tokens(job.request or c.request, reading))
        return Failed(str(error), Why.TOO_LONG, tokens=tokens)

    def _source(self, engine: Engine, job: _Job) -> Source:
        c = job.command
        assert isinstance(c, Reply)
        if c.raw is not None:
            if not engine.info.caps.tokens:
                raise R1ChatError("a raw prompt needs a local model")
            return _RawPrompt(engine, c.raw)  # type: ignore[arg-type]
        if job.prompt is not None:
            return _Prompt(engine, job.prompt)  # type: ignore[arg-type]
        return engine

    def _saver(self, c: Reply) -> Saver | None:
        if c.save_to is None or self.backlog is None:
            return None
        return Saver(self.backlog, c.save_to)

    def _prefill(self, engine: Engine, job_id: int, request: Request, arrivals: int) -> None:
        """A conversation that goes on is sent back with this answer: read it now, until
        the next job arrives (`_arrived` cancels it)."""
        control = Control()
        with self._prefill_lock:
            if arrivals != self._arrivals:
                return  # a job came while the reply ended
            self._prefills.add(control)
        try:
            self.put((job_id, Prefilled(engine.prefill(request, control))))
        except Exception:  # an optimisation: the next prompt reads it all instead
            log.error("prefill failed:\n%s", traceback.format_exc())
        finally:
            with self._prefill_lock:
                self._prefills.discard(control)

    def _measure(
        self,
        engine: Engine,
        job_id: int,
        messages: tuple[Message, ...],
        request: Request,
        overflow: Overflow,
    ) -> None:
        """Put the context `messages` fill as the next prompt (all of it when no policy
        can shorten it; 0 for an engine that cannot count)."""
        try:
            count = token_counter(engine, request)
            if count is None:
                tokens = 0
            else:
                try:
                    tokens = fit(messages, count, engine.info.n_ctx, overflow).tokens
                except PromptTooLong:
                    tokens = count(messages)
        except Exception:
            return
        self.put((job_id, ContextUsed(tokens, engine.info.n_ctx)))


class _Prompt:
    """A chat whose prompt was read ahead, as a turn's source (its own finish reason:
    other replies may run on the engine at the same time)."""

    def __init__(self, engine: TextEngine, prompt: list[int]) -> None:
        self.engine, self.prompt = engine, prompt
        self.finish_reason = "cancelled"

    def opens_thinking(self, request: Request) -> bool:
        return self.engine.opens_thinking(request)

    def stream(self, request: Request, control: Control) -> Iterator[Delta | PromptProgress]:
        reply = self.engine.reply(self.prompt, request.sampling, control, request.tools)
        self.finish_reason = yield from reply


class _RawPrompt:
    """A raw prompt as a turn's source: all of it answer, nothing split."""

    def __init__(self, engine: TextEngine, prompt: str) -> None:
        self.engine, self.prompt = engine, prompt
        self.finish_reason = "cancelled"

    def opens_thinking(self, request: Request) -> bool:
        return False

    def stream(self, request: Request, control: Control) -> Iterator[Delta | PromptProgress]:
        reply = self.engine.complete(self.prompt, request.sampling, control)
        while True:
            try:
                item: Any = next(reply)
            except StopIteration as end:
                self.finish_reason = end.value
                return
            if isinstance(item, Delta):
                yield Delta(item.text, item.tokens, Channel.ANSWER, item.injected)
            else:
                yield item
