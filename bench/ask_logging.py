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
    print(table(
        ["run", "seconds"],
        [["logged to the history (default)", f"{median(logged):.3f}"],
         ["--no-log", f"{median(unlogged):.3f}"],
         ["difference (median of paired runs, ms)", f"{median(diffs) * 1000:.1f}"]],
    ))  # fmt: skip

    big = ["-m", str(long.path), "--ctx", "8192", *common, "--no-log", "Explain the plan."]
    rates: dict[str, list[float]] = {"--json": [], "--jsonl": []}
    for i in range(max(4, opts.runs // 3)):
        for mode in ("--json", "--jsonl") if i % 2 == 0 else ("--jsonl", "--json"):
            last = run([mode, *big], home)[1].splitlines()[-1]
            rates[mode].append(json.loads(last)["stats"]["tokens_per_s"])
    base = median(rates["--json"])
    print(f"\n## Decode on the long-trace fixture (median of {len(rates['--json'])})\n")
    print(table(
        ["output", "tokens/s", "vs --json"],
        [[k, f"{median(v):,.0f}", f"{median(v) / base:.2f}"] for k, v in rates.items()],
    ))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
