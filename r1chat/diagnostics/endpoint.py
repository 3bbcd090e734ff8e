"""`r1chat doctor --endpoint URL`: is an OpenAI-compatible server usable from here?

Three checks, each stopping the rest when it fails: the server answers (and the API key,
if any, is accepted), it lists its models (and serves the one asked for), and a
one-token chat completion streams back.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, TextIO

from r1chat.core.errors import R1ChatError

if TYPE_CHECKING:
    from r1chat.engine.remote.engine import RemoteEngine

CHECK_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


def check_endpoint(
    url: str,
    *,
    model: str | None = None,
    api_key_env: str | None = None,
    timeout: float = CHECK_TIMEOUT,
) -> list[Check]:
    """Run the checks against `url` (or a `[remotes.NAME]` of the config)."""
    from r1chat.config.file import Config
    from r1chat.config.settings import Settings
    from r1chat.engine.remote.engine import RemoteEngine
    from r1chat.launch.remotes import RemoteTarget, api_key_from_env, find_remote

    checks: list[Check] = []
    try:
        config = Config.load()
        target: RemoteTarget | None = None
        if url in config.values.remotes:
            target = find_remote(Settings(model=url, api_key_env=api_key_env), config)
        if target is None:
            target = find_remote(Settings(model=model, endpoint=url, api_key_env=api_key_env))
        assert target is not None
        key = api_key_from_env(target.api_key_env, target.key_source)
        engine = RemoteEngine(
            target.url,
            model=model or target.model or "",
            api_key=key,
            api_key_env=target.api_key_env,
            timeout=min(timeout, target.timeout or timeout),
            retries=0,
        )
    except R1ChatError as e:
        return [Check("server", False, str(e))]
    try:
        served = _models(engine, checks)
        if served is None:
            return checks
        _completion(engine, checks)
    finally:
        engine.close()
    return checks


def _models(engine: RemoteEngine, checks: list[Check]) -> list[str] | None:
    try:
        listed = engine.list_models()
    except R1ChatError as e:
        checks.append(Check("server", False, str(e)))
        return None
    auth = "; API key accepted" if engine.has_key else ""
    checks.append(Check("server", True, f"{engine.endpoint.shown} answers{auth}"))
    names = [m["id"] for m in listed]
    if not names:
        checks.append(Check("models", False, "the server lists no models"))
        return None
    if not engine.model:
        engine.model = names[0]
    elif engine.model not in names:
        checks.append(
            Check(
                "models",
                False,
                f"{engine.model!r} is not served; the server lists: {', '.join(names[:8])}",
            )
        )
        return None
    more = f" (+{len(names) - 8} more)" if len(names) > 8 else ""
    checks.append(Check("models", True, ", ".join(names[:8]) + more))
    return names


def _completion(engine: RemoteEngine, checks: list[Check]) -> None:
    from r1chat.core.events import Channel, Delta
    from r1chat.core.messages import Message
    from r1chat.core.request import Control, Request, Sampling

    request = Request(
        messages=(Message("user", "Reply with one word: OK"),),
        sampling=Sampling(temperature=0.0, max_tokens=1),
    )
    start = time.perf_counter()
    first: Delta | None = None
    try:
        for item in engine.stream(request, Control()):
            if isinstance(item, Delta) and item.text and first is None:
                first = item
    except R1ChatError as e:
        checks.append(Check("completion", False, str(e)))
        return
    ms = (time.perf_counter() - start) * 1000
    if first is None:
        checks.append(Check("completion", False, "the server streamed no text"))
        return
    where = {
        Channel.THINKING: "reasoning in a separate field",
        Channel.ANSWER: "answer text",
        Channel.RAW: "inline text (reasoning in <think> tags)",
    }[first.channel]
    checks.append(
        Check(
            "completion",
            True,
            f"first token {first.text!r} in {ms:.0f} ms as {where} (model {engine.model})",
        )
    )
    sampling = (
        "takes top_k and min_p as r1chat sends them"
        if engine.takes_top_k_min_p
        else "refused top_k and min_p: they are left out, so the server's own apply"
    )
    checks.append(Check("sampling", True, sampling))


def run_endpoint_check(
    url: str,
    *,
    model: str | None = None,
    api_key_env: str | None = None,
    as_json: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Print the checks (a table, or JSON) and return the exit code: 1 if any failed."""
    out = out or sys.stdout
    err = err or sys.stderr
    checks = check_endpoint(url, model=model, api_key_env=api_key_env)
    failed = [c for c in checks if not c.ok]
    if as_json:
        obj = {"checks": [asdict(c) for c in checks], "problems": [c.detail for c in failed]}
        out.write(json.dumps(obj, indent=2) + "\n")
        return 1 if failed else 0
    width = max(len(c.name) for c in checks)
    for c in checks:
        out.write(f"{c.name:<{width}}  {'ok' if c.ok else 'FAILED'}: {c.detail}\n")
    if failed:  # the reasons are in the table: one line, not the same words again
        names = ", ".join(c.name for c in failed)
        err.write(f"error: {len(failed)} of {len(checks)} checks failed ({names})\n")
    return 1 if failed else 0
