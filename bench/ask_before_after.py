"""`r1chat ask` on two checkouts, alternating, in one run: its decode tokens/s before and
after a change (the chat and `ask` must lose nothing to `serve`'s parallel sequences).

Usage: python bench/ask_before_after.py OLD_CHECKOUT [--runs 5]
(e.g. `git worktree add /tmp/old 17eebed`, then `python bench/ask_before_after.py /tmp/old`)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import ROOT, median, table

from tests.fixtures.scripted import write_long_model

SMOLLM2 = Path.home() / ".cache" / "r1chat-tests" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def rate(checkout: Path, model: Path, home: str, *flags: str) -> float:
    """tokens/s of one `ask --json` run with `checkout`'s r1chat."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "R1CHAT_HOME": home}
    cmd = [sys.executable, "-m", "r1chat", "ask", "--json", "-m", str(model), "--threads", "1"]
    out = subprocess.run(
        [*cmd, *flags, "Explain the plan."], capture_output=True, text=True, env=env, check=True
    )
    return float(json.loads(out.stdout)["stats"]["tokens_per_s"])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("old", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="r1chat-bench-")
    with tempfile.TemporaryDirectory() as d:
        long = write_long_model(Path(d))
        cases = [("long fixture (7,500 tokens)", long.path, ())]
        if SMOLLM2.is_file():
            cases.append(("SmolLM2-135M, 256 tokens", SMOLLM2, ("--max-tokens", "256")))
        rows = []
        for name, model, flags in cases:
            before, after = [], []
            for _ in range(args.runs):
                before.append(rate(args.old, model, home, *flags))
                after.append(rate(ROOT, model, home, *flags))
            b, a = median(before), median(after)
            rows.append([name, f"{b:,.0f}", f"{a:,.0f}", f"{a / b:.2f}x"])
    print(table(["model", "before (tok/s)", "after (tok/s)", "after / before"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
