"""Running an eval: the samples not yet stored go to a model host as replies, the K
samples of a question together (on a local model they run as parallel sequences of one
context and share the question's prompt cache); each is graded and stored the moment it
ends, and `progress` hears of it."""

from __future__ import annotations

import queue
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from r1chat.config import paths
from r1chat.config.settings import Settings
from r1chat.core.errors import R1ChatError
from r1chat.core.events import Done
from r1chat.core.messages import Message
from r1chat.core.request import Request, Sampling
from r1chat.core.turn import Guards
from r1chat.evals.benches import Bench
from r1chat.evals.check import Asked, ask, grade
from r1chat.evals.data import Question
from r1chat.evals.scores import Score, score
from r1chat.evals.store import EvalStore, Run, Sample
from r1chat.host.commands import Load, Model, Reply, Start
from r1chat.host.model_host import ModelHost
from r1chat.host.outcomes import Failed, Item, JobEnded, Loaded, LoadFailed, Why

CARD_SAMPLING = Sampling(temperature=0.6, top_p=0.95, top_k=0, min_p=0.0)
"""The card's sampling: temperature 0.6, top-p 0.95, nothing else."""

PROTOCOL = Guards(think_budget=None, loop_guard=False, answer_room=False)
"""The card's protocol has no reasoning controls: a reply runs to its end or its cap."""


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a run stands: samples stored of all, questions with every sample, the score
    so far, and this session's pace."""

    stored: int
    total: int
    questions_done: int
    questions: int
    score: Score
    tokens_per_s: float
    eta_s: float | None


def eval_log() -> Path:
    """Where the eval's model process writes its own output."""
    return paths.log_dir() / "eval.log"


def sample_seed(run_seed: int, question: str, sample: int) -> int:
    """The seed of one sample (its sampling, and its choices' order): the same in every
    session of a run."""
    return zlib.crc32(f"{run_seed}:{question}:{sample}".encode()) & 0x7FFFFFFF


class Evaluation:
    """One run of `bench` on `settings`' model over `questions`, stored in `store`."""

    def __init__(
        self,
        store: EvalStore,
        run: Run,
        bench: Bench,
        questions: list[Question],
        settings: Settings,
        host: Callable[[Callable[[tuple[int, Item]], None]], ModelHost] | None = None,
    ) -> None:
        self.store, self.run, self.bench, self.settings = store, run, bench, settings
        self.questions = questions
        self._inbox: queue.SimpleQueue[tuple[int, Item]] = queue.SimpleQueue()
        self._host = (host or _model_process)(self._inbox.put)
        self._model = Model(settings)
        self._samples: list[Sample] = []

    def load(self) -> dict[str, Any]:
        """Load the model; what it is (`EngineInfo` fields a report shows)."""
        job = self._host.next_id()
        self._host.send(Load(job, self._model))
        while True:
            got_job, item = self._inbox.get()
            if got_job != job:
                continue
            if isinstance(item, LoadFailed):
                raise R1ChatError(item.message)
            if isinstance(item, Loaded):
                info = item.info
                return {
                    "name": info.model,
                    "offload": info.offload,
                    "n_ctx": info.n_ctx,
                    "kv_type": info.kv_type,
                    "sequences": info.caps.sequences,
                }

    def go(self, progress: Callable[[Progress], None]) -> Score:
        """Run every sample not yet stored; the run's score."""
        self._samples = self.store.samples(self.run)
        stored = {(s.question, s.sample) for s in self._samples}
        k = self.run.spec.samples
        todo = [(q, i) for q in self.questions for i in range(k) if (q.id, i) not in stored]
        total = len(self.questions) * k
        window = 2 * max(k, 1)
        running: dict[int, tuple[Question, int, int, Asked]] = {}
        start, tokens, finished = time.monotonic(), 0, 0
        try:
            while todo or running:
                while todo and len(running) < window:
                    question, i = todo.pop(0)
                    running[self._send(question, i)] = (question, i, *self._asked(question, i))
                job, item = self._inbox.get()
                if job not in running:
                    continue
                question, i, seed, asked = running[job]
                if isinstance(item, JobEnded):
                    del running[job]
                    continue
                sample = self._sample(question, i, seed, asked, item)
                if sample is None:
                    continue
                self.store.add(self.run, sample)
                self._samples.append(sample)
                tokens += sample.reasoning_tokens + sample.answer_tokens
                finished += 1
                progress(self._progress(total, tokens, finished, len(todo) + len(running), start))
        finally:
            self._host.stop()
        self.store.finish(self.run)
        return score(self.store.samples(self.run))

    def _asked(self, question: Question, i: int) -> tuple[int, Asked]:
        seed = sample_seed(self.run.spec.seed, question.id, i)
        return seed, ask(self.bench, question, seed)

    def _send(self, question: Question, i: int) -> int:
        seed, asked = self._asked(question, i)
        job = self._host.next_id()
        sampling = replace(CARD_SAMPLING, max_tokens=self.run.spec.max_tokens, seed=seed)
        request = Request(
            (Message("user", asked.prompt),), sampling, math=self.bench.kind == "math"
        )
        self._host.send(Reply(job, self._model, request, PROTOCOL, follow_up=False))
        return job

    def _sample(
        self, question: Question, i: int, seed: int, asked: Asked, item: Item
    ) -> Sample | None:
        """The stored sample `item` ends, or None for an item that ends none."""
        if isinstance(item, Failed):
            if item.why in (Why.LOAD, Why.CRASHED, Why.CANCELLED):
                raise R1ChatError(item.message)  # a run with no model cannot go on
            return Sample(question.id, i, seed, "failed", "", 0, 0, 0.0, item.message)
        if not isinstance(item, Done):
            return None
        graded = grade(question, asked, item)
        s = item.stats
        return Sample(
            question.id, i, seed, graded.outcome, graded.answer,
            s.thinking_tokens, s.answer_tokens, s.total_s, item.content,
        )  # fmt: skip

    def _progress(
        self, total: int, tokens: int, finished: int, left: int, start: float
    ) -> Progress:
        samples = self._samples
        counts: dict[str, int] = {}
        for s in samples:
            counts[s.question] = counts.get(s.question, 0) + 1
        elapsed = max(time.monotonic() - start, 1e-9)
        return Progress(
            stored=len(samples),
            total=total,
            questions_done=sum(n >= self.run.spec.samples for n in counts.values()),
            questions=len(self.questions),
            score=score(samples),
            tokens_per_s=tokens / elapsed,
            eta_s=left * elapsed / finished if finished else None,
        )


def _model_process(put: Callable[[tuple[int, Item]], None]) -> ModelHost:
    from r1chat.launch.engines import open_engine

    return ModelHost.in_process(put, Start(open_engine, join_text=True), eval_log)
