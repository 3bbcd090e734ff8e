"""Helpers shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import compileall
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# r1chat's modules as bytecode, as `pip install` and `pipx install` leave them: a checkout
# run with PYTHONDONTWRITEBYTECODE=1 (as this workplace's shells are) would compile every
# module on each launch, ~0.2 s that no installed r1chat spends.
compileall.compile_dir(ROOT / "r1chat", quiet=1)


def r1chat(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> tuple[float, str]:
    """Run `python -m r1chat ARGS`; return (wall seconds, stdout)."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "r1chat", *args],
        input=stdin or "",
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=True,
    )
    return time.perf_counter() - start, out.stdout


def ask_json(*args: str, env: dict[str, str] | None = None) -> dict:
    return json.loads(r1chat("ask", "--json", *args, env=env)[1])


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A Markdown table."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), sep, *map(line, cells)])
