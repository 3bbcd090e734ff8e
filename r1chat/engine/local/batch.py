"""Several replies at once on one llama.cpp context (continuous batching), for `serve`.

The context holds `sequences` sequences, each with a KV cache of its own (a slot). One
thread, the `Batcher`, owns the context: each step it decodes one batch that advances
every running reply by its next token and reads a chunk of a newcomer's prompt, then
samples each reply's next token (its own chain, seed and grammar) from that batch. Each
reply runs on the thread of its request, exactly as with one sequence
(`LocalEngine._generate`: reasoning guards, injections, the grammar after `</think>`),
and waits for the Batcher only for its tokens. A reply goes to the free slot whose cache
shares the longest prefix with its prompt (a follow-up finds its conversation there); a
prompt that another slot holds, or is reading, more of is copied from that slot's cache
rather than read again (an eval's K samples of a question, agents' long system prompts).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from r1chat.core.errors import R1ChatError
from r1chat.core.events import Delta, PromptProgress
from r1chat.core.request import Control, Request, Sampling, prompt_problem
from r1chat.core.tools import Tools
from r1chat.engine.local.constrained import Sampler
from r1chat.engine.local.engine import LocalEngine, seed_of
from r1chat.engine.local.native import Model, common_prefix, lib

STRAGGLERS_S = 0.05
"""The longest a step waits for replies still handling their last token (so that they go
in the same batch and not one step later): half the last step's decode time, at most
this. (A fixed wait, on a machine short of CPU, locks replies into taking turns, one
wait a token.)"""

OPENING = 2
"""The tokens by which a conversation's last prompt may end apart from the same
conversation rendered as history in its follow-up: the template's opening of the reply
(R1's `<think>\n`, which history leaves out)."""

COPY_GAIN = 8
"""The fewest prompt tokens a copy from another slot must save (on a long context, one in
1,024 of a slot's context). A copy moves that slot's whole KV stream (llama.cpp copies
across streams only whole): at 8,192 tokens a slot, about what reading 1 to 3 prompt
tokens costs, on a CPU (SmolLM2 to a 7B) as on a GPU."""

_CANCELLED = "cancelled"
_READ = "read"


@dataclass(eq=False)
class Slot:
    """One sequence of the context: the tokens in its cache and the reply using it."""

    seq: int
    cached: list[int] = field(default_factory=list)
    used: float = 0.0  # when it last ended a reply (the least recent is reused first)
    asked: int = 0  # the length of the last prompt it read (a reply's, or a prefill's)
    pending: list[int] = field(default_factory=list)  # to decode in the next steps
    rewind: int | None = None  # drop the cache from here before decoding `pending`
    sample: bool = False  # sample a token once `pending` is decoded
    turn: int = 0  # counts the replies it served (a step's results go to its own only)
    control: Control | None = None
    sampler: Sampler | None = None
    results: queue.SimpleQueue[Any] = field(default_factory=queue.SimpleQueue)


class Batcher:
    """The context's thread: see the module's docstring."""

    def __init__(self, llm: Model, sequences: int, chunk: int, n_batch: int) -> None:
        self._lib = lib()
        self._ctx, self._memory = llm.ctx, llm.memory
        self.slots = [Slot(i) for i in range(sequences)]
        self._free = list(self.slots)
        self._chunk, self._n_batch = chunk, n_batch
        per_slot = int(self._lib.llama_n_ctx(self._ctx)) // sequences
        self._copy_gain = max(COPY_GAIN, per_slot // 1024)
        self._batch = self._lib.llama_batch_init(n_batch, 0, 1)
        self._cond = threading.Condition()
        self._awaiting: set[int] = set()  # slots given a token, not yet fed again
        self._stepping: set[int] = set()  # slots in the batch being decoded
        self._copying: set[int] = set()  # slots waiting to copy a prompt (no step starts)
        self._inline = False  # a lone reply decodes on its own thread (`alone`)
        self._patience = STRAGGLERS_S  # how long the next step waits for stragglers
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="batcher", daemon=True)
        self._thread.start()

    # -- a reply's thread ----------------------------------------------------------------

    def take(self, tokens: list[int]) -> Slot:
        """A free slot for `tokens` (waits for one): of those whose cache they go on from,
        the one holding most of them, else the least recently used. They go on from a
        slot's cache when they hold the whole prompt it last read (a follow-up finds its
        conversation), or it holds them all but the last (the same prompt again: a retry,
        another client's same question; only the reply after it is lost). A new
        conversation that shares a system prompt with another (agents' long ones) takes
        another slot, and copies that prompt from it (`keep`): both stay cached."""
        with self._cond:
            while not (free := [s for s in self._free if s.seq not in self._stepping]):
                self._cond.wait()
            held = {s: common_prefix(s.cached, tokens) for s in free}
            ours = [s for s in free if _goes_on(s, held[s], len(tokens))]
            slot = max(ours, key=held.__getitem__) if ours else min(free, key=lambda s: s.used)
            slot.asked = len(tokens)
            self._free.remove(slot)
            while not slot.results.empty():  # (what came after its last reply ended)
                slot.results.get()
            return slot

    def give_back(self, slot: Slot) -> None:
        with self._cond:
            slot.pending, slot.rewind, slot.sample, slot.control = [], None, False, None
            if slot.sampler is not None:
                slot.sampler.close()
                slot.sampler = None
            slot.used = time.monotonic()
            slot.turn += 1
            self._awaiting.discard(slot.seq)
            self._free.append(slot)
            self._cond.notify_all()

    def keep(self, slot: Slot, tokens: list[int], most: int) -> int:
        """Keep the slot's cached prefix in common with `tokens` (at most `most`), the
        rest dropped before its next step; or, when another slot holds (or is reading)
        `copy_gain` more of them, that slot's prefix, copied once it is read. Returns
        where reading starts."""
        own = min(common_prefix(slot.cached, tokens), most)
        with self._cond:
            try:
                while True:
                    donor, n = self._donor(slot, tokens, most)
                    if donor is None or n < own + self._copy_gain or self._closing:
                        slot.rewind = own
                        return own
                    if (len(donor.cached) if donor.rewind is None else donor.rewind) >= n:
                        if not self._stepping and not self._inline:
                            break
                        self._copying.add(slot.seq)  # read: the next step waits for the copy
                    else:  # (still reading, perhaps more than when last seen: steps go on)
                        self._no_copy(slot)
                    self._cond.wait()  # for the donor's reading, or for the step to end
                # (no step runs now, and none starts: the Batcher needs this lock)
                self._lib.llama_memory_seq_cp(self._memory, donor.seq, slot.seq, -1, -1)
                self._lib.llama_memory_seq_rm(self._memory, slot.seq, n, -1)
                slot.cached, slot.rewind = donor.cached[:n], None
                return n
            finally:
                self._copying.discard(slot.seq)
                self._cond.notify_all()

    def _no_copy(self, slot: Slot) -> None:
        """`slot` waits to copy a prompt no more: the Batcher, which starts no step while a
        slot does, is told (it may be waiting for that copy)."""
        if slot.seq in self._copying:
            self._copying.discard(slot.seq)
            self._cond.notify_all()

    def _donor(self, slot: Slot, tokens: list[int], most: int) -> tuple[Slot | None, int]:
        """The other slot whose cache will hold the longest prefix of `tokens` once what
        it is reading is read, and that prefix's length (at most `most`)."""
        best, longest = None, 0
        for other in self.slots:
            if other is slot:
                continue
            kept = other.cached if other.rewind is None else other.cached[: other.rewind]
            n = min(common_prefix(kept + other.pending, tokens), most)
            if n > longest:
                best, longest = other, n
        return best, longest

    def feed(self, slot: Slot, tokens: list[int], *, sample: bool, control: Control) -> None:
        """Decode `tokens` on the slot in the next steps; then sample a token if asked."""
        with self._cond:
            slot.pending += tokens
            slot.sample, slot.control = sample, control
            self._awaiting.discard(slot.seq)
            self._cond.notify_all()

    def cached(self, slot: Slot) -> int:
        """The tokens in the slot's cache (once its rewind is done)."""
        with self._cond:
            return len(slot.cached) if slot.rewind is None else slot.rewind

    def stop(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout=30)
        self._lib.llama_batch_free(self._batch)

    # -- the batcher's thread ------------------------------------------------------------

    def _run(self) -> None:
        while (work := self._next_batch()) is not None:
            self._step(work)

    def _next_batch(self) -> list[tuple[Slot, list[int], int]] | None:
        """The tokens of the next step, per slot (None: stopping)."""
        with self._cond:
            deadline: float | None = None
            while True:
                if self._closing:
                    return None
                if self._inline or self._copying:  # a lone reply steps, or a prompt is copied
                    self._cond.wait()
                    continue
                for slot in self.slots:
                    if slot.pending and slot.control is not None and slot.control.cancelled:
                        slot.pending = []
                        slot.results.put(_CANCELLED)
                ready = [s for s in self.slots if s.pending]
                now = time.monotonic()
                if ready and (not self._awaiting or (deadline is not None and now >= deadline)):
                    break
                if ready and deadline is None:
                    deadline = now + self._patience
                self._cond.wait(None if deadline is None else max(0.0, deadline - now))
            work, room = [], self._n_batch
            # replies first (a token or an injection each), then prompt chunks
            for slot in sorted(ready, key=lambda s: len(s.pending)):
                take = slot.pending[: min(self._chunk, room)]
                if not take:
                    break
                del slot.pending[: len(take)]
                if slot.rewind is not None:
                    self._lib.llama_memory_seq_rm(self._memory, slot.seq, slot.rewind, -1)
                    del slot.cached[slot.rewind :]
                    slot.rewind = None
                work.append((slot, take, slot.turn))
                room -= len(take)
                self._stepping.add(slot.seq)
            return work

    def alone(self, slot: Slot, tokens: list[int], control: Control) -> Any:
        """Decode `tokens` on `slot` and sample its next token on the calling thread, when
        no other slot has work: a reply running alone then costs what it costs on one
        sequence, with no hand-off to the Batcher's thread and back per token. Returns the
        token (or `_CANCELLED`); None when the Batcher must do it (others are at work)."""
        with self._cond:
            busy = self._closing or self._stepping or self._inline or self._copying
            if busy or len(self._free) < len(self.slots) - 1 or any(s.pending for s in self.slots):
                return None
            if control.cancelled:
                return _CANCELLED
            if slot.rewind is not None:
                self._lib.llama_memory_seq_rm(self._memory, slot.seq, slot.rewind, -1)
                del slot.cached[slot.rewind :]
                slot.rewind = None
            self._inline = True
        try:
            status, sampled = self._decode([(slot, tokens, slot.turn)], sample=True)
            if status != 0:
                self._lib.llama_memory_seq_rm(self._memory, slot.seq, len(slot.cached), -1)
                raise R1ChatError(f"llama.cpp could not decode ({status})")
            slot.cached += tokens
            assert slot.sampler is not None
            return slot.sampler.sample(self._ctx, sampled[slot])
        finally:
            with self._cond:
                self._inline = False
                if self._copying or any(s.pending for s in self.slots):
                    self._cond.notify_all()  # (else no one waits for it: no wake-up a token)

    def _decode(
        self, work: list[tuple[Slot, list[int], int]], *, sample: bool = False
    ) -> tuple[int, dict[Slot, int]]:
        """Decode one batch of each slot's tokens; llama.cpp's status, and the batch index
        of the logits of each slot that samples next (`sample`: the one slot given does)."""
        batch = self._batch
        n = 0
        outputs: list[tuple[Slot, int]] = []  # slots sampling, at their last token's index
        for slot, tokens, _ in work:
            start = len(slot.cached)
            last = sample or (not slot.pending and slot.sample)
            for j, token in enumerate(tokens):
                batch.token[n], batch.pos[n] = token, start + j
                batch.n_seq_id[n], batch.seq_id[n][0] = 1, slot.seq
                batch.logits[n] = last and j == len(tokens) - 1
                n += 1
            if last:
                outputs.append((slot, n - 1))
        batch.n_tokens = n
        return self._lib.llama_decode(self._ctx, batch), dict(outputs)

    def _step(self, work: list[tuple[Slot, list[int], int]]) -> None:
        start = time.perf_counter()
        status, sampled = self._decode(work)
        self._patience = min(STRAGGLERS_S, (time.perf_counter() - start) / 2)
        with self._cond:
            self._stepping.clear()
            self._cond.notify_all()
            for slot, tokens, turn in work:
                if status != 0:
                    self._lib.llama_memory_seq_rm(self._memory, slot.seq, len(slot.cached), -1)
                else:
                    slot.cached += tokens
                if slot.turn != turn:  # its reply ended meanwhile
                    continue
                if status != 0:
                    slot.results.put(R1ChatError(f"llama.cpp could not decode ({status})"))
                elif slot in sampled and slot.sampler is not None:
                    slot.results.put(slot.sampler.sample(self._ctx, sampled[slot]))
                    self._awaiting.add(slot.seq)
                elif not slot.pending:
                    slot.results.put(_READ)
                else:
                    slot.results.put(len(slot.cached))


def _goes_on(slot: Slot, held: int, prompt: int) -> bool:
    """Whether a prompt of `prompt` tokens, `held` of them in `slot`'s cache, goes on from
    that cache: it holds the whole prompt the slot last read (but the template's opening of
    the reply), or the slot holds all of it but its last token."""
    return held > OPENING and held >= min(slot.asked - OPENING, prompt - 1)


class _InSlot:
    """A reply's tokens from its slot (`Tokens` for `LocalEngine._generate`)."""

    def __init__(self, batcher: Batcher, slot: Slot, control: Control) -> None:
        self._batcher, self._slot, self._control = batcher, slot, control
        self._unread: list[int] = []

    def restart(self, context: list[int], grammar: Any) -> None:
        slot = self._slot
        assert slot.sampler is not None
        slot.sampler.hold(grammar)
        self._unread = context[self._batcher.cached(slot) :]

    def next(self) -> int | None:
        unread, self._unread = self._unread, []
        item = self._batcher.alone(self._slot, unread, self._control)
        if item is None:  # others are at work: the Batcher steps for all
            self._batcher.feed(self._slot, unread, sample=True, control=self._control)
            item = self._slot.results.get()
        if isinstance(item, Exception):
            raise item
        if item == _CANCELLED:
            return None
        self._unread = [item]  # the cache holds it once the next step decodes it
        return int(item)

    def close(self) -> None:
        pass  # the slot is given back when the reply ends (`BatchEngine.reply`)


class BatchEngine(LocalEngine):
    """`LocalEngine` with `sequences` replies at once, each with `n_ctx` of context."""

    def __init__(self, *args: Any, sequences: int, **kwargs: Any) -> None:
        super().__init__(*args, sequences=sequences, **kwargs)
        self.batcher = Batcher(self._llm, sequences, self._chunk, n_batch=512)

    def reply(
        self, prompt: list[int], s: Sampling, control: Control, tools: Tools | None = None
    ) -> Generator[Delta | PromptProgress, None, str]:
        limit, grammar = self._limits(prompt, s, tools)
        slot = self.batcher.take(prompt)
        try:
            start = self.batcher.keep(slot, prompt, len(prompt) - 1)
            yield from self._read_into(slot, prompt, start, len(prompt) - 1, control)
            yield PromptProgress(len(prompt), len(prompt), start)
            if control.cancelled:
                return "cancelled"
            slot.sampler = Sampler(self._llm, s, seed_of(s))
            tokens = _InSlot(self.batcher, slot, control)
            return (yield from self._generate(tokens, prompt, limit, control, grammar))
        finally:
            self.batcher.give_back(slot)

    def prefill(self, request: Request, control: Control) -> int:
        tokens = self.builder.for_request(request, reply=False)
        if prompt_problem(len(tokens), self.info.n_ctx):
            return 0
        slot = self.batcher.take(tokens)
        try:
            start = self.batcher.keep(slot, tokens, len(tokens))
            for _ in self._read_into(slot, tokens, start, len(tokens), control):
                pass
            return self.batcher.cached(slot) - start
        finally:
            self.batcher.give_back(slot)

    def _read_into(
        self, slot: Slot, prompt: list[int], start: int, end: int, control: Control
    ) -> Generator[PromptProgress, None, None]:
        """Read `prompt[start:end]` into the slot, in the Batcher's chunks; stops once
        `control` is cancelled (what was read stays cached)."""
        if end <= start:
            return
        self.batcher.feed(slot, prompt[start:end], sample=False, control=control)
        while (item := slot.results.get()) != _READ:
            if isinstance(item, Exception):
                raise item
            if item == _CANCELLED:
                return
            yield PromptProgress(int(item), len(prompt), start)

    def close(self) -> None:
        self.batcher.stop()
        super().close()
