"""Eval runs and their graded samples in one SQLite file beside the history
(`paths.evals_db()`). A sample is written the moment it is graded, in its own
transaction, keyed by (run, question, sample): a killed run loses only the replies in
flight, and a resumed one asks for exactly the samples not yet stored."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from r1chat.config import paths
from r1chat.core import storage
from r1chat.core.errors import R1ChatError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    finished REAL,
    spec TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS samples (
    run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    question TEXT NOT NULL,
    sample INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    answer TEXT NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    answer_tokens INTEGER NOT NULL,
    seconds REAL NOT NULL,
    reply TEXT NOT NULL,
    PRIMARY KEY (run, question, sample)
);
"""


@dataclass(frozen=True, slots=True)
class RunSpec:
    """What a run asks: enough to resume it as it was, and to say what it measured."""

    model: str
    bench: str
    samples: int
    parallel: int  # replies at once (a local model's sequences)
    limit: int | None
    max_tokens: int
    seed: int
    data: str  # the questions' digest (`data.digest`)
    data_file: str | None = None
    endpoint: str | None = None
    api_key_env: str | None = None
    n_ctx: int = 0
    threads: int | None = None
    gpu_layers: int | None = None
    kv_type: str = "f16"
    label: dict[str, Any] = field(default_factory=dict)  # what the model turned out to be


@dataclass(frozen=True, slots=True)
class Sample:
    question: str
    sample: int
    seed: int
    outcome: str
    answer: str
    reasoning_tokens: int
    answer_tokens: int
    seconds: float
    reply: str = ""  # the answer text (the reasoning is left out: its length is kept)


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    started: float
    finished: float | None
    spec: RunSpec


class EvalStore:
    """See the module's docstring; errors are one-line `R1ChatError`s."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or paths.evals_db()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise self._error("open", e) from None

    def close(self) -> None:
        self._db.close()

    def _error(self, doing: str, e: BaseException) -> R1ChatError:
        why = storage.problem(self.path, e if isinstance(e, OSError) else None) or str(e)
        return R1ChatError(f"cannot {doing} the eval results {self.path}: {why}")

    def _write(self, sql: str, args: tuple[Any, ...]) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, args)
        except sqlite3.Error as e:
            raise self._error("write", e) from None

    def new_run(self, spec: RunSpec) -> Run:
        started = time.time()
        text = json.dumps(asdict(spec))
        cur = self._write("INSERT INTO runs (started, spec) VALUES (?, ?)", (started, text))
        return Run(int(cur.lastrowid or 0), started, None, spec)

    def relabel(self, run: Run, label: dict[str, Any]) -> Run:
        """Record what the model turned out to be (its name, quant, context, offload)."""
        spec = RunSpec(**{**asdict(run.spec), "label": label})
        self._write("UPDATE runs SET spec = ? WHERE id = ?", (json.dumps(asdict(spec)), run.id))
        return Run(run.id, run.started, run.finished, spec)

    def add(self, run: Run, s: Sample) -> None:
        self._write(
            "INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run.id, s.question, s.sample, s.seed, s.outcome, s.answer, s.reasoning_tokens,
             s.answer_tokens, s.seconds, s.reply),
        )  # fmt: skip

    def finish(self, run: Run) -> None:
        self._write("UPDATE runs SET finished = ? WHERE id = ?", (time.time(), run.id))

    def samples(self, run: Run) -> list[Sample]:
        rows = self._db.execute(
            "SELECT question, sample, seed, outcome, answer, reasoning_tokens, answer_tokens, "
            "seconds, reply FROM samples WHERE run = ? ORDER BY rowid",
            (run.id,),
        )
        return [Sample(*row) for row in rows]

    def runs(self) -> list[Run]:
        """Every run, newest first."""
        rows = self._db.execute("SELECT id, started, finished, spec FROM runs ORDER BY id DESC")
        return [Run(i, s, f, RunSpec(**json.loads(spec))) for i, s, f, spec in rows]

    def run(self, run_id: int | None = None, *, unfinished: bool = False) -> Run:
        """Run `run_id`, or the newest (the newest unfinished one, with `unfinished`)."""
        for run in self.runs():
            if (run_id is None or run.id == run_id) and not (unfinished and run.finished):
                return run
        if run_id is not None:
            raise R1ChatError(f"no eval run {run_id} (r1chat eval show lists them)")
        raise R1ChatError("no unfinished eval run to resume" if unfinished else "no eval runs yet")
