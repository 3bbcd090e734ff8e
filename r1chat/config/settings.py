"""Run settings from defaults, the config file, a preset and the command line, in that order."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

from r1chat.config.file import Config
from r1chat.config.schema import RULES, SAMPLING
from r1chat.core.errors import UsageError
from r1chat.core.messages import Message
from r1chat.core.overflow import Overflow
from r1chat.core.request import Request, Sampling
from r1chat.core.turn import Guards

# DeepSeek's advice for R1 (temperature 0.5-0.7, top-p 0.95) is the default preset.
BUILTIN_PRESETS: dict[str, dict[str, Any]] = {
    "deepseek": {"temperature": 0.6, "top_p": 0.95},
    "precise": {"temperature": 0.5, "top_p": 0.95},
    "creative": {"temperature": 0.7, "top_p": 0.95},
    "greedy": {"temperature": 0.0},
}


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a reply depends on besides the conversation."""

    model: str | None = None
    n_ctx: int | None = None
    gpu_layers: int | None = None
    threads: int | None = None
    sampling: Sampling = field(default_factory=Sampling)
    preset: str = "deepseek"
    system: str = ""
    guards: Guards = field(default_factory=Guards)
    think: bool = True
    math: bool = False
    endpoint: str | None = None  # an OpenAI-compatible server (then `model` is what it serves)
    api_key_env: str | None = None  # the environment variable holding the server's API key
    overflow: Overflow = field(default_factory=Overflow)  # a conversation over the context
    kv_type: str = "f16"  # the KV cache's element type (config.schema.KV_TYPES)
    flash_attn: str = "auto"  # auto: llama.cpp's choice (on wherever it has the kernel)
    repack: str = "auto"  # llama.cpp repacking weights for its CPU kernels (launch.repack)
    sequences: int = 1  # replies at once, each with `n_ctx` (serve's --parallel)

    def request(self, messages: tuple[Message, ...]) -> Request:
        """The request for `messages` under these settings: where the chat and `ask` make theirs."""
        return Request(messages, self.sampling, self.system, think=self.think, math=self.math)


def presets(config: Config) -> dict[str, dict[str, Any]]:
    return {**BUILTIN_PRESETS, **config.values.presets}


# command-line option -> the config key whose rule it follows
_CLI_RULES = {
    **{key: ("sampling", key) for key in SAMPLING},
    "n_ctx": ("model", "ctx"),
    "gpu_layers": ("model", "gpu_layers"),
    "threads": ("model", "threads"),
    "think_budget": ("reasoning", "think_budget"),
}


def _check_cli(cli: dict[str, Any]) -> None:
    """Command-line values follow the same rules as the config's keys."""
    for name, (section, key) in _CLI_RULES.items():
        value = cli.get(name)
        if value is not None and (problem := RULES[section][key].problem(value)) is not None:
            option = "ctx" if name == "n_ctx" else name.replace("_", "-")  # as in --top-p
            raise UsageError(f"--{option} {problem}")


def _sampling(config: Config, cli: dict[str, Any]) -> tuple[Sampling, str]:
    """Sampling values, later sources winning: defaults, the config's preset, `[sampling]`,
    a preset named on the command line, then single command-line values."""
    table = presets(config)
    cli_preset = cli.get("preset")
    configured = config.values.sampling
    config_preset = configured.get("preset")
    for name in (cli_preset, config_preset):
        if name is not None and name not in table:
            known = ", ".join(sorted(table))
            raise UsageError(f"unknown preset {name!r} (known: {known})")
    layers = [
        table[config_preset] if config_preset else {},
        configured,
        table[cli_preset] if cli_preset else {},
        {k: cli.get(k) for k in SAMPLING},
    ]
    values: dict[str, Any] = {}
    for layer in layers:
        values.update({k: v for k, v in layer.items() if k in SAMPLING and v is not None})
    return Sampling(**values), cli_preset or config_preset or "deepseek"


def resolve(config: Config, cli: dict[str, Any]) -> Settings:
    """Merge config and command-line values (`None` on the command line means unset)."""
    _check_cli(cli)
    values = config.values
    model, reasoning = values.model, values.reasoning
    sampling, preset = _sampling(config, cli)
    loop_guard = cli.get("loop_guard")
    threads = _first(cli.get("threads"), model.threads)
    if threads is not None and threads > (cpus := os.cpu_count() or 1):
        where = "--threads" if cli.get("threads") is not None else f"threads in {config.path}"
        raise UsageError(f"{where} {threads} is more than this machine's {cpus} CPUs (1 to {cpus})")
    kv_type = _first(cli.get("kv_type"), model.kv_type) or "f16"
    flash_attn = _first(cli.get("flash_attn"), model.flash_attn) or "auto"
    if kv_type != "f16" and flash_attn == "off":
        raise UsageError(
            f"a {kv_type} KV cache needs flash attention: use --flash-attn auto (or on), "
            "or --kv-type f16"
        )
    return Settings(
        # with --endpoint, -m names the served model: a local default would not do
        model=_first(cli.get("model"), None if cli.get("endpoint") else model.default),
        n_ctx=_first(cli.get("n_ctx"), model.ctx),
        gpu_layers=_first(cli.get("gpu_layers"), model.gpu_layers),
        threads=threads,
        sampling=sampling,
        preset=preset,
        system=_first(cli.get("system"), values.system_prompt) or "",
        guards=Guards(
            think_budget=_first(cli.get("think_budget"), reasoning.think_budget),
            loop_guard=reasoning.loop_guard if loop_guard is None else loop_guard,
        ),
        think=not cli.get("no_think") and reasoning.think,
        math=bool(cli.get("math")) or reasoning.math,
        endpoint=cli.get("endpoint"),
        api_key_env=cli.get("api_key_env"),
        kv_type=kv_type,
        flash_attn=flash_attn,
        repack=_first(cli.get("repack"), model.repack) or "auto",
        overflow=replace(
            values.overflow, policy=_first(cli.get("overflow"), values.overflow.policy)
        ),
    )


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)
