"""What `config.toml` may hold, as typed values, validated once when it is read.

    [model]         default = "r1:7b", ctx = 16384, gpu_layers = -1, threads = 8,
                    kv_type = "f16" | "q8_0" | "q4_0", flash_attn = "auto" | "on" | "off",
                    repack = "auto" | "on" | "off"
    [sampling]      temperature, top_p, top_k, min_p, max_tokens, seed, preset
    [presets.NAME]  any [sampling] key but preset (a preset named in [sampling] is
                    overridden by the keys beside it; one named with --preset overrides them)
    [reasoning]     display = "show" | "collapsed", think_budget, loop_guard, think, math
    [chat]          system_prompt, overflow = "drop-oldest" | "stop", reply_reserve,
                    keep_first (what a conversation over the context does: core.overflow)
    [ask]           log = true | false (save every `r1chat ask` in the history)
    [serve]         host, port, queue, parallel, allowed_hosts = [...], allowed_origins = [...],
                    keep_alive
    [remotes.NAME]  url, model, api_key_env, timeout

Every key has one rule (`Rule`): its type and what values it allows. A value that breaks
it is one line naming the file, the section, the key, the value and what is allowed; the
command line's options are checked against the same rules (`check`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1chat.core.errors import UsageError
from r1chat.core.overflow import POLICIES, Overflow
from r1chat.core.units import duration

DISPLAYS = ("show", "collapsed")
KV_TYPES = ("f16", "q8_0", "q4_0")  # models.fit.KV_TYPES sizes them
FLASH_ATTN = ("auto", "on", "off")
REPACK = ("auto", "on", "off")  # launch.repack decides auto


class ConfigError(UsageError):
    """A config value of the wrong type or out of range."""


@dataclass(frozen=True, slots=True)
class Rule:
    kind: type | tuple[type, ...]
    allowed: str  # "a number from 0 to 5": ends "must be ..."
    ok: Callable[[Any], bool] = lambda v: True

    def problem(self, value: Any) -> str | None:
        """Why `value` breaks the rule (None if it keeps it)."""
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        typed = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if typed and self.ok(value):
            return None
        return f"must be {self.allowed}, not {value!r}"


def _strings(value: list[Any]) -> bool:
    return all(isinstance(v, str) and v.strip() for v in value)


_INT, _NUM, _STR, _BOOL, _LIST = (int,), (int, float), (str,), (bool,), (list,)
SAMPLING = {
    "temperature": Rule(_NUM, "a number from 0 to 5", lambda v: 0 <= v <= 5),
    "top_p": Rule(_NUM, "a number above 0 and at most 1", lambda v: 0 < v <= 1),
    "top_k": Rule(_INT, "a whole number, 0 or more (0: off)", lambda v: v >= 0),
    "min_p": Rule(_NUM, "a number from 0 to 1", lambda v: 0 <= v <= 1),
    "max_tokens": Rule(_INT, "a whole number, at least 1", lambda v: v >= 1),
    "seed": Rule(_INT, "a whole number"),
}
RULES: dict[str, dict[str, Rule]] = {
    "model": {
        "default": Rule(_STR, "a model name or a GGUF path", lambda v: bool(v.strip())),
        "ctx": Rule(_INT, "a whole number of tokens, at least 64", lambda v: v >= 64),
        "gpu_layers": Rule(_INT, "-1 (all), 0 or a number of layers", lambda v: v >= -1),
        "threads": Rule(_INT, "a whole number, at least 1", lambda v: v >= 1),
        "kv_type": Rule(_STR, " or ".join(repr(k) for k in KV_TYPES), lambda v: v in KV_TYPES),
        "flash_attn": Rule(
            _STR, " or ".join(repr(f) for f in FLASH_ATTN), lambda v: v in FLASH_ATTN
        ),
        "repack": Rule(_STR, " or ".join(repr(r) for r in REPACK), lambda v: v in REPACK),
    },
    "sampling": {**SAMPLING, "preset": Rule(_STR, "the name of a preset")},
    "reasoning": {
        "display": Rule(_STR, " or ".join(repr(d) for d in DISPLAYS), lambda v: v in DISPLAYS),
        "think_budget": Rule(_INT, "a whole number of tokens, at least 1", lambda v: v >= 1),
        "loop_guard": Rule(_BOOL, "true or false"),
        "think": Rule(_BOOL, "true or false"),
        "math": Rule(_BOOL, "true or false"),
    },
    "chat": {
        "system_prompt": Rule(_STR, "text"),
        "overflow": Rule(_STR, " or ".join(repr(p) for p in POLICIES), lambda v: v in POLICIES),
        "reply_reserve": Rule(_INT, "a whole number of tokens, 0 or more", lambda v: v >= 0),
        "keep_first": Rule(_BOOL, "true or false"),
    },
    "ask": {"log": Rule(_BOOL, "true or false")},
    "serve": {
        "host": Rule(_STR, "an address to listen on", lambda v: bool(v.strip())),
        "port": Rule(_INT, "a port from 0 to 65535", lambda v: 0 <= v <= 65535),
        "queue": Rule(_INT, "a whole number, at least 1", lambda v: v >= 1),
        "parallel": Rule(_INT, "a whole number from 1 to 64", lambda v: 1 <= v <= 64),
        "allowed_hosts": Rule(_LIST, "a list of host names", _strings),
        "allowed_origins": Rule(_LIST, 'a list of origins ("https://app.example")', _strings),
        "keep_alive": Rule(
            (str, int, float),
            'a duration like "5m" or "30s", seconds, or -1 (keep the model loaded)',
            lambda v: duration(v) is not None,
        ),
    },
}
REMOTE = {
    "url": Rule(_STR, "an http(s) URL", lambda v: bool(v.strip())),
    "model": Rule(_STR, "a string"),
    "api_key_env": Rule(_STR, "the name of an environment variable"),
    "timeout": Rule(_NUM, "a positive number of seconds", lambda v: v > 0),
}


@dataclass(frozen=True, slots=True)
class ModelValues:
    default: str | None = None
    ctx: int | None = None
    gpu_layers: int | None = None
    threads: int | None = None
    kv_type: str | None = None
    flash_attn: str | None = None
    repack: str | None = None


@dataclass(frozen=True, slots=True)
class ReasoningValues:
    display: str = "show"
    think_budget: int | None = None
    loop_guard: bool = True
    think: bool = True
    math: bool = False


@dataclass(frozen=True, slots=True)
class ServeValues:
    host: str | None = None
    port: int | None = None
    queue: int | None = None
    parallel: int | None = None
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    keep_alive: str | float | None = None


@dataclass(frozen=True, slots=True)
class Remote:
    url: str
    model: str | None = None
    api_key_env: str | None = None
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class Values:
    """The whole config, typed; absent keys are None or the default."""

    model: ModelValues = field(default_factory=ModelValues)
    sampling: dict[str, Any] = field(default_factory=dict)  # the keys given, preset included
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    reasoning: ReasoningValues = field(default_factory=ReasoningValues)
    system_prompt: str = ""
    overflow: Overflow = field(default_factory=Overflow)
    ask_log: bool = True
    serve: ServeValues = field(default_factory=ServeValues)
    remotes: dict[str, Remote] = field(default_factory=dict)


def check(rules: Mapping[str, Rule], key: str, value: Any, where: str) -> None:
    """Raise ConfigError if `value` breaks `key`'s rule (`where` says where it came from)."""
    if (problem := rules[key].problem(value)) is not None:
        raise ConfigError(f"{where}: {key} {problem}")


def _table(table: Any, name: str, rules: Mapping[str, Rule], path: Path) -> dict[str, Any]:
    """One section's keys, each checked against its rule."""
    where = f"[{name}] in {path}"
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {name} must be a table ([{name}])")
    for key, value in table.items():
        if key not in rules:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(rules)})")
        check(rules, key, value, where)
    return dict(table)


def parse(data: Mapping[str, Any], path: Path) -> Values:
    """Validate a config file's tables (raises ConfigError on the first bad value)."""
    known = {*RULES, "presets", "remotes"}
    for name in data:
        if name not in known:
            raise ConfigError(f"{path}: unknown section [{name}] (known: {', '.join(known)})")
    model, sampling, reasoning, chat, ask, serve = (
        _table(data.get(name, {}), name, RULES[name], path) for name in RULES
    )
    presets = {
        name: _table(table, f"presets.{name}", SAMPLING, path)
        for name, table in _tables(data, "presets", path).items()
    }
    remotes = {}
    for name, table in _tables(data, "remotes", path).items():
        entry = _table(table, f"remotes.{name}", REMOTE, path)
        if "url" not in entry:
            raise ConfigError(f"[remotes.{name}] in {path} has no url")
        remotes[name] = Remote(**entry)
    return Values(
        model=ModelValues(**model),
        sampling=sampling,
        presets=presets,
        reasoning=ReasoningValues(**reasoning),
        system_prompt=chat.get("system_prompt", ""),
        overflow=Overflow(
            chat.get("overflow", "drop-oldest"),
            chat.get("reply_reserve"),
            chat.get("keep_first", False),
        ),
        ask_log=ask.get("log", True),
        serve=ServeValues(
            serve.get("host"),
            serve.get("port"),
            serve.get("queue"),
            serve.get("parallel"),
            tuple(serve.get("allowed_hosts", ())),
            tuple(serve.get("allowed_origins", ())),
            serve.get("keep_alive"),
        ),
        remotes=remotes,
    )


def _tables(data: Mapping[str, Any], section: str, path: Path) -> dict[str, Any]:
    tables = data.get(section, {})
    if not isinstance(tables, dict) or not all(isinstance(v, dict) for v in tables.values()):
        raise ConfigError(f"{path}: [{section}] holds tables only ([{section}.NAME])")
    return tables
