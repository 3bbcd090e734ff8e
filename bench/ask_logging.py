"""What logging and `--jsonl` cost `r1chat ask`, measured side by side in one run.

1. Whole-process wall time of `r1chat ask` on the answer fixture, logged to the history
   (the default) and with `--no-log`, runs alternating; medians and the difference.
2. Decode throughput on the long-trace fixture (6,000 reasoning tokens and a 1,500-token
   answer): `--jsonl` (a JSON line flushed per event) against `--json`, runs alternating.

Usage: python bench/ask_logging.py [--runs 15] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import median, table

from tests.fixtures.scripted import write_answer_model, write_long_model

# Bytecode is cached, as in an installed r1chat (pip compiles it at install time): with
# PYTHONDONTWRITEBYTECODE every run would compile the modules it imports from source.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run(args: list[str], home: str) -> tuple[float, str]:
    """Wall seconds and stdout of one `r1chat ask`; stdout goes to a file, so what is
    measured is r1chat's writing, not a Python reader's."""
    with tempfile.TemporaryFile("w+", encoding="utf-8") as out:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "r1chat", "ask", *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            env=ENV | {"R1CHAT_HOME": home},
            check=True,
        )
        seconds = time.perf_counter() - start
        out.seek(0)
        return seconds, out.read()


# What logging adds to an ask, timed inside a fresh process (so the interpreter's own
# start-up, which dominates the whole-process noise, is left out).
LOG_WORK = """
import sys, time
import r1chat.cli.ask, r1chat.cli.ask_output, r1chat.core.turn, r1chat.launch.local  # ask has
from r1chat.config.file import Config                                   # these before logging
from r1chat.config.settings import Settings, resolve
from r1chat.core.events import Done
resolve(Config.load(), {})
t0 = time.perf_counter()
from r1chat.history.store import History
from r1chat.session.dialogue import Dialogue
from r1chat.host.saver import Saver
t1 = time.perf_counter()
history = History(sys.argv[1])
conversation = Dialogue(history, source="ask")
exchange = conversation.add_prompt("What is 2+2?", "model")
saver = Saver(history, conversation.start_reply(exchange, "model", Settings()), print, 0)
saver.finish(Done("Two and two.", "4", "stop"))
history.close()
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def log_work(db: Path) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-c", LOG_WORK, str(db)],
        env=ENV,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return float(out[0]), float(out[1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    opts = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="r1chat-bench-"))
    answer = write_answer_model(tmp)
    long = write_long_model(tmp)
    home = str(tmp / "home")
    common = ["--threads", str(opts.threads)]

    logged: list[float] = []
    unlogged: list[float] = []
    run(["-m", str(answer.path), *common, "warm-up"], home)
    sides = ((logged, []), (unlogged, ["--no-log"]))
    for i in range(opts.runs):  # ABBA order: neither side always runs first
        for times, extra in sides if i % 2 == 0 else sides[::-1]:
            times.append(run(["-m", str(answer.path), *common, *extra, f"q {i}"], home)[0])
    diffs = [a - b for a, b in zip(logged, unlogged, strict=True)]
    print(f"## `r1chat ask` on the answer fixture, whole process (median of {opts.runs})\n")
    print(
        table(
            ["run", "seconds"],
            [
                ["logged to the history (default)", f"{median(logged):.3f}"],
                ["--no-log", f"{median(unlogged):.3f}"],
                ["difference (median of paired runs, ms)", f"{median(diffs) * 1000:.1f}"],
            ],
        )
    )

    work = [log_work(tmp / "work.sqlite3") for _ in range(opts.runs)]
    print(f"\n## What logging does, timed inside a fresh process (median of {opts.runs})\n")
    print(
        table(
            ["step", "ms"],
            [
                [
                    "import the history and session modules",
                    f"{median([w[0] for w in work]) * 1000:.1f}",
                ],
                [
                    "open the database, 4 writes, close",
                    f"{median([w[1] for w in work]) * 1000:.1f}",
                ],
            ],
        )
    )

    big = ["-m", str(long.path), "--ctx", "8192", *common, "--no-log", "Explain the plan."]
    rates: dict[str, list[float]] = {"--json": [], "--jsonl": []}
    for i in range(max(4, opts.runs // 3)):
        for mode in ("--json", "--jsonl") if i % 2 == 0 else ("--jsonl", "--json"):
            last = run([mode, *big], home)[1].splitlines()[-1]
            rates[mode].append(json.loads(last)["stats"]["tokens_per_s"])
    base = median(rates["--json"])
    print(f"\n## Decode on the long-trace fixture (median of {len(rates['--json'])})\n")
    print(
        table(
            ["output", "tokens/s", "vs --json"],
            [[k, f"{median(v):,.0f}", f"{median(v) / base:.2f}"] for k, v in rates.items()],
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
