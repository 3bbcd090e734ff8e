"""Each coding agent against `r1chat launch`, non-interactively: Claude Code (Anthropic's
Messages API), Codex (OpenAI's Responses API) and opencode (chat completions).

Two runs an agent, each bounded (`--timeout`, then the whole process group is killed):

1. "say hi" on a scripted model that reasons, then answers (R1's format, a 131,072-token
   context: an agent's system prompt and tools fit);
2. a tool call on a scripted model that reasons, then calls the agent's own shell tool
   (`Bash`, `exec_command`, `bash`) to `echo hi`. It calls it again every turn (a bigram
   model cannot tell that the result came back), so only Claude Code's `--max-turns`
   ends that run by itself; the others run until the bound.

For each run: the agent's exit status (or `timeout`), seconds, and the routes it called
(from the server's log, `launch.log`), with how many tool results came back (requests
after the first that carry one).

Usage: python bench/agents.py [--bin node_modules/.bin] [--timeout 300] [--only claude]
The agents come from npm: `npm install @openai/codex @anthropic-ai/claude-code opencode-ai`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _common import ROOT, table

from tests.fixtures.scripted_tools import write_agent_answer_model, write_agent_call_model

PROMPTS = {
    "claude": lambda p: ["-p", p, "--max-turns", "3", "--allowedTools", "Bash"],
    "codex": lambda p: ["exec", "--skip-git-repo-check", p],
    "opencode": lambda p: ["run", p],
}
SAY_HI = "say hi"
CALL = "Run `echo hi` with your shell tool."
_ROUTE = re.compile(r"^(GET|POST|DELETE) (\S+?)(?:\?\S*)? (\d{3})")


def run(agent: str, model: Path, prompt: str, home: Path, bin_dir: Path, timeout: float) -> dict:
    r1home = home / "r1chat"
    work = home / "work"
    work.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(home),
        "CODEX_HOME": str(home / "codex"),
        "R1CHAT_HOME": str(r1home),
        "PYTHONPATH": str(ROOT),
    }
    (home / "codex").mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "r1chat", "launch", agent, "-m", str(model), "--threads", "2"]
    cmd += ["--", *PROMPTS[agent](prompt)]
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
        status = str(proc.returncode)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the agent and launch; the server follows
        out, _ = proc.communicate()
        status = "timeout"
    seconds = time.monotonic() - start
    log = next(r1home.rglob("launch.log"), None)
    lines = log.read_text(encoding="utf-8").splitlines() if log is not None else []
    routes = Counter(f"{m[1]} {m[2]} {m[3]}" for line in lines if (m := _ROUTE.match(line)))
    return {"status": status, "seconds": seconds, "routes": routes, "out": out}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", default="node_modules/.bin", help="where the agents are")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--only", action="append", choices=sorted(PROMPTS))
    args = parser.parse_args()
    bin_dir = Path(args.bin).resolve()
    agents = args.only or sorted(PROMPTS)
    rows = []
    with tempfile.TemporaryDirectory(prefix="r1chat-agents-") as tmp:
        models = Path(tmp) / "models"
        answer = write_agent_answer_model(models).path
        for agent in agents:
            if shutil.which(agent, path=str(bin_dir)) is None:
                rows.append([agent, "-", "not installed", "", ""])
                continue
            calls = write_agent_call_model(models, agent).path
            for what, model, prompt in (("say hi", answer, SAY_HI), ("tool call", calls, CALL)):
                home = Path(tmp) / f"{agent}-{what.replace(' ', '-')}"
                got = run(agent, model, prompt, home, bin_dir, args.timeout)
                routes = ", ".join(f"{k} ×{n}" for k, n in sorted(got["routes"].items()))
                answered = "The answer is **4**" in got["out"] if what == "say hi" else None
                note = {True: "answer shown", False: "no answer", None: ""}[answered]
                if what == "tool call":
                    note = f"{max(0, sum(got['routes'].values()) - 1)} request(s) after the call"
                rows.append([agent, what, got["status"], f"{got['seconds']:.0f}", routes, note])
                print(f"{agent} {what}: {got['status']}\n{got['out'][-1500:]}\n", file=sys.stderr)
    print(
        table(
            ["agent", "run", "exit", "s", "routes (method path status × count)", "seen"],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
