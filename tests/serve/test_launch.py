"""`r1chat launch`: a stand-in agent on PATH (a script named `claude`, `codex` or
`opencode`) that asks the server it was pointed at, through the same variables and flags
the real agent reads, and says what it got; the server launch started is gone after.
The real agents are run by bench/agents.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.fixtures.scripted import ScriptedModel

AGENT = textwrap.dedent(
    """\
    #!{python}
    import json, os, sys, urllib.request
    name = os.path.basename(sys.argv[0])
    args = sys.argv[1:]
    if name == "claude":
        root, model = os.environ["ANTHROPIC_BASE_URL"], os.environ["ANTHROPIC_MODEL"]
        url, body = root + "/v1/messages", {{"model": model, "max_tokens": 64,
            "messages": [{{"role": "user", "content": "hi"}}]}}
        headers = {{"x-api-key": os.environ["ANTHROPIC_AUTH_TOKEN"]}}
    elif name == "codex":
        provider = [a for a in args if a.startswith("model_providers.r1chat=")][0]
        root = provider.split('base_url="')[1].split('"')[0]
        model = args[args.index("-m") + 1]
        url, body, headers = root + "/responses", {{"model": model, "input": "hi"}}, {{}}
    else:
        config = json.loads(os.environ["OPENCODE_CONFIG_CONTENT"])
        root = config["provider"]["r1chat"]["options"]["baseURL"]
        model = config["model"].split("/", 1)[1]
        url, body = root + "/chat/completions", {{"model": model,
            "messages": [{{"role": "user", "content": "hi"}}]}}
        headers = {{}}
    request = urllib.request.Request(url, json.dumps(body).encode(),
        {{"Content-Type": "application/json", **headers}})
    reply = json.load(urllib.request.urlopen(request, timeout=60))
    print(json.dumps({{"args": args, "reply": reply}}))
    sys.exit(7)
    """
)


def stand_in(bin_dir: Path, name: str) -> None:
    path = bin_dir / name
    path.write_text(AGENT.format(python=sys.executable), encoding="utf-8")
    path.chmod(0o755)


def launch(
    tmp_path: Path, *args: str, agents: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in agents:
        stand_in(bin_dir, name)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "R1CHAT_HOME": str(tmp_path / "home"),
    }
    cmd = [sys.executable, "-m", "r1chat", "launch", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("agent", ["claude", "codex", "opencode"])
def test_launch_points_the_agent_at_a_server_it_starts_and_stops(
    tmp_path: Path, answer_model: ScriptedModel, agent: str
) -> None:
    out = launch(
        tmp_path,
        agent,
        "-m",
        str(answer_model.path),
        "--port",
        "0",
        "--ctx",
        "4096",
        "--",
        "--their-flag",
        agents=(agent,),
    )
    assert out.returncode == 7, out.stderr  # the agent's own exit status
    said = json.loads(out.stdout.strip().splitlines()[-1])
    assert said["args"][-1] == "--their-flag"
    answer = json.dumps(answer_model.answer, ensure_ascii=False)[1:-1]  # as it is in JSON
    assert answer in json.dumps(said["reply"], ensure_ascii=False)
    assert "starting r1chat serve" in out.stderr
    log = (tmp_path / "home").rglob("launch.log")
    lines = next(log).read_text(encoding="utf-8")
    assert " 200 · scripted-answer" in lines and "r1chat serve: stopped" in lines


def test_a_missing_agent_is_one_line_saying_how_to_install_it(tmp_path: Path) -> None:
    out = launch(tmp_path, "codex")
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "error: Codex is not installed (`codex` is not on PATH): npm install -g @openai/codex"
    )
