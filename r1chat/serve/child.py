"""The model process of `r1chat serve`: `python -m r1chat.serve.child`.

It holds the engine, so that a crash inside llama.cpp costs the request in progress and
not the server (`serve.worker` sees the process die and starts another). It speaks in
`session.childproc` frames:

- in: `("settings", Settings)` first; `("job", id, Call, model, spec)` (a request for
  the model the server calls `model`, opened from `spec`); `("load", id, model, spec)`;
  `("cancel", id)`; `("quit",)`;
- out: lists of `(id, item)`: `Loaded`, `LoadFailed`, `Accepted`, `Started`, the reply's
  events (one per token, as clients see them), `Failed`, `Rendered`, `JobEnded`.

The model thread takes jobs in the order their prompts are ready and starts each on a
thread of its own once one of the engine's sequences is free (`settings.sequences`: a
`BatchEngine` runs that many replies at once; one otherwise); a job for another model
waits until the running replies end, then the model changes. Each chat for the resident
model has its prompt read into tokens on a thread of its own as it arrives (`_prepare`),
under a `Reading`: a prompt too long for the context is refused at once (having read no
more than a context's worth), one whose client left stops, and neither holds up the
others or the replies that run. After a chat reply, and until the next job arrives, its
thread reads the conversation with its answer ahead of time (idle-time prefill).
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from r1chat.config.settings import Settings
from r1chat.core.errors import BadSchema, PromptCancelled, PromptTooLong, R1ChatError
from r1chat.core.events import Channel, Delta, Done, PromptProgress
from r1chat.core.request import Control, Reading, Request
from r1chat.core.turn import run_turn
from r1chat.engine.base import TextEngine
from r1chat.serve.fields import BadRequest
from r1chat.serve.items import Accepted, Failed, Rendered, Started, too_long_error
from r1chat.serve.requests import Call
from r1chat.session.childproc import Outbox, child_streams, read_frame
from r1chat.session.items import JobEnded, Loaded, LoadFailed


@dataclass
class _Job:
    id: int
    call: Call
    model: str
    spec: str
    control: Control
    prompt: list[int] | None = None  # read ahead by `_prepare` (a chat for the resident model)
    refused: bool = False  # `_prepare` answered it (too long)


class Host:
    """The engine and the threads around it."""

    def __init__(self, settings: Settings, put: Any) -> None:
        self.settings, self.put = settings, put
        self.engine: TextEngine | None = None
        self.resident: str | None = None
        self._swap = threading.Lock()  # held while the engine changes
        self._reading = 0  # prompts being read (the engine may not change meanwhile)
        self._read = threading.Condition(self._swap)
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._controls: dict[int, Control] = {}
        self._prefills: set[Control] = set()
        self._running = 0  # replies on their threads
        self._ran = threading.Condition()
        self._model = threading.Thread(target=self._model_loop, name="serve-model", daemon=True)
        self._model.start()

    # -- commands (the main thread) ------------------------------------------------------

    def job(self, job_id: int, call: Call, model: str, spec: str) -> None:
        self._stop_prefills()  # a prefill gives way at once; what it read stays cached
        control = self._controls[job_id] = Control()
        job = _Job(job_id, call, model, spec, control)
        if call.chat and not call.dry_run:
            threading.Thread(target=self._prepare, args=(job,), daemon=True).start()
        else:
            self.put((job.id, Accepted()))
            self._jobs.put(job)

    def load(self, job_id: int, model: str, spec: str) -> None:
        self._stop_prefills()
        self._jobs.put(_Job(job_id, None, model, spec, Control()))  # type: ignore[arg-type]

    def cancel(self, job_id: int) -> None:
        if (control := self._controls.get(job_id)) is not None:
            control.cancel()

    def stop(self) -> None:
        self._stop_prefills()
        for control in list(self._controls.values()):
            control.cancel()
        self._jobs.put(None)
        self._model.join(timeout=30)
        self._drain(timeout=30)
        with self._swap:
            if self.engine is not None:
                self.engine.close()
                self.engine = None

    # -- reading prompts ahead -----------------------------------------------------------

    def _prepare(self, job: _Job) -> None:
        """Read a chat's prompt for the resident model (beside a running reply: llama.cpp's
        tokenizer does not touch the context), then queue it; a prompt that does not fit
        is refused here. For another model, it is read once that model is loaded."""
        with self._swap:
            engine = self.engine if self.resident == job.model else None
            if engine is not None:
                self._reading += 1
        if engine is not None:
            try:
                job.prompt = engine.prompt_tokens(
                    job.call.request, Reading(engine.info.n_ctx, job.control)
                )
            except PromptTooLong as e:
                job.refused = True
                self.put((job.id, Failed(too_long_error(str(e)))))
            except PromptCancelled:
                pass  # the model thread says so
            except R1ChatError:
                pass  # the reply says it
            finally:
                with self._swap:
                    self._reading -= 1
                    self._read.notify_all()
        if not job.refused:
            self.put((job.id, Accepted()))
        self._jobs.put(job)

    # -- the model -----------------------------------------------------------------------

    def _open(self, model: str, spec: str) -> tuple[TextEngine, bool]:
        """The engine for `model`, and whether it was loaded just now."""
        from r1chat.launch.local import open_named

        with self._swap:
            if self.resident == model and self.engine is not None:
                return self.engine, False
            while self._reading:  # a prompt read on the old engine: it ends first
                self._read.wait()
            if self.engine is not None:
                self.engine.close()
                self.engine, self.resident = None, None
            self.engine = open_named(spec, self.settings, name=model)
            self.resident = model
            return self.engine, True

    def _model_loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            if job.refused or (job.call is not None and job.control.cancelled):
                if not job.refused:
                    self.put((job.id, Failed(BadRequest("cancelled", status=499))))
                self._end(job)
                continue
            if job.call is None or job.model != self.resident:
                self._drain()  # the model changes once no reply runs on it
            engine = self._load(job)
            if engine is None or job.call is None:
                self._end(job)
                continue
            with self._ran:
                while self._running >= self.settings.sequences:
                    self._ran.wait()
                self._running += 1
            self.put((job.id, Started()))
            threading.Thread(target=self._run, args=(engine, job), daemon=True).start()

    def _run(self, engine: TextEngine, job: _Job) -> None:
        try:
            self._serve(engine, job)
        finally:
            self._end(job)
            with self._ran:
                self._running -= 1
                self._ran.notify_all()

    def _end(self, job: _Job) -> None:
        self._controls.pop(job.id, None)
        self.put((job.id, JobEnded()))

    def _drain(self, timeout: float | None = None) -> None:
        """Wait until no reply runs (at most `timeout` seconds)."""
        with self._ran:
            self._ran.wait_for(lambda: not self._running, timeout)

    def _stop_prefills(self) -> None:
        for control in list(self._prefills):
            control.cancel()

    def _load(self, job: _Job) -> TextEngine | None:
        try:
            engine, loaded = self._open(job.model, job.spec)
        except R1ChatError as e:
            self._fail_load(job, str(e))
            return None
        except Exception as e:  # a bug or an unexpected file: still one readable line
            self._fail_load(job, f"cannot load {job.model}: {type(e).__name__}: {e}")
            return None
        if job.call is None or loaded:  # the server says which model is resident
            self.put((job.id, Loaded(engine.info, 0.0)))
        return engine

    def _fail_load(self, job: _Job, message: str) -> None:
        if job.call is None:
            self.put((job.id, LoadFailed(message)))
        else:
            self.put(
                (job.id, Failed(BadRequest(message, "model", status=500, kind="server_error")))
            )

    def _serve(self, engine: TextEngine, job: _Job) -> None:
        call = job.call
        if call.dry_run:
            rendered = engine.render(call.request)
            self.put((job.id, Rendered(rendered.text, rendered.tokens)))
            return
        done: Done | None = None
        try:
            source: Any
            if not call.chat:
                source = _RawPrompt(engine, call.prompt or "")
            else:
                reading = Reading(engine.info.n_ctx, job.control)
                prompt = job.prompt or engine.prompt_tokens(call.request, reading)
                source = _Prompt(engine, prompt)
            for event in run_turn(source, call.request, job.control, call.guards):
                self.put((job.id, event))
                done = event if isinstance(event, Done) else done
        except PromptTooLong as e:
            self.put((job.id, Failed(too_long_error(str(e)))))
        except BadSchema as e:
            self.put((job.id, Failed(BadRequest(str(e), "response_format"))))
        except PromptCancelled:
            self.put((job.id, Failed(BadRequest("cancelled", status=499))))
        except R1ChatError as e:
            self.put((job.id, Failed(BadRequest(str(e), status=500, kind="server_error"))))
        except Exception as e:  # a bug of ours: the server goes on with the next request
            message = f"internal error: {type(e).__name__}: {e}"
            self.put((job.id, Failed(BadRequest(message, status=500, kind="server_error"))))
        if call.chat and done is not None and done.goes_on and self._jobs.empty():
            self._prefill_next(engine, call.request, done.content)

    def _prefill_next(self, engine: TextEngine, request: Request, answer: str) -> None:
        """A client that goes on with this conversation sends it back with the answer:
        read that now, until the next job arrives (`job` cancels it)."""
        control = Control()
        self._prefills.add(control)
        try:
            engine.prefill(request.answered(answer), control)
        except Exception:  # an optimisation: the next prompt reads it all instead
            return
        finally:
            self._prefills.discard(control)


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
    """A `/v1/completions` prompt as a turn's source: all of it answer, nothing split."""

    def __init__(self, engine: TextEngine, prompt: str) -> None:
        self.engine, self.prompt = engine, prompt
        self.finish_reason = "cancelled"

    def opens_thinking(self, request: Request) -> bool:
        return False

    def stream(self, request: Request, control: Control) -> Iterator[Delta | PromptProgress]:
        reply = self.engine.complete(self.prompt, request.sampling, control)
        while True:
            try:
                item = next(reply)
            except StopIteration as end:
                self.finish_reason = end.value
                return
            if isinstance(item, Delta):
                yield Delta(item.text, item.tokens, Channel.ANSWER, item.injected)
            else:
                yield item


def _urgent(item: tuple[int, Any]) -> bool:
    """A job's end, or a load's: the parent is waiting for it."""
    return isinstance(item[1], (JobEnded, Loaded, LoadFailed, Accepted))


def main() -> int:
    out = child_streams()
    stdin = sys.stdin.buffer
    first = read_frame(stdin)
    if first is None or first[0] != "settings":
        return 2
    outbox = Outbox(out, list, _urgent)
    writer = threading.Thread(target=outbox.run, name="serve-writer", daemon=True)
    writer.start()
    host = Host(first[1], outbox.put)
    while (command := read_frame(stdin)) is not None:
        kind = command[0]
        if kind == "job":
            host.job(*command[1:])
        elif kind == "load":
            host.load(*command[1:])
        elif kind == "cancel":
            host.cancel(command[1])
        elif kind == "quit":
            break
    host.stop()
    outbox.close()
    writer.join(5.0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
