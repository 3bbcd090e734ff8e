"""Run settings from defaults, the config file, a preset and the command line, in that order."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from r1chat.config.file import Config
from r1chat.core.errors import UsageError
from r1chat.core.request import Sampling
from r1chat.core.turn import Guards

# DeepSeek's advice for R1 (temperature 0.5-0.7, top-p 0.95) is the default preset.
BUILTIN_PRESETS: dict[str, dict[str, Any]] = {
    "deepseek": {"temperature": 0.6, "top_p": 0.95},
    "precise": {"temperature": 0.5, "top_p": 0.95},
    "creative": {"temperature": 0.7, "top_p": 0.95},
    "greedy": {"temperature": 0.0},
}
SAMPLING_KEYS = {f.name for f in fields(Sampling)}


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


def presets(config: Config) -> dict[str, dict[str, Any]]:
    return {**BUILTIN_PRESETS, **config.section("presets")}


def _sampling(config: Config, cli: dict[str, Any]) -> tuple[Sampling, str]:
    """Sampling values, later sources winning: defaults, the config's preset, `[sampling]`,
    a preset named on the command line, then single command-line values."""
    table = presets(config)
    cli_preset = cli.get("preset")
    config_preset = config.get("sampling", "preset")
    for name in (cli_preset, config_preset):
        if name is not None and name not in table:
            known = ", ".join(sorted(table))
            raise UsageError(f"unknown preset {name!r} (known: {known})")
    layers = [
        table[config_preset] if config_preset else {},
        config.section("sampling"),
        table[cli_preset] if cli_preset else {},
        {k: cli.get(k) for k in SAMPLING_KEYS},
    ]
    values: dict[str, Any] = {}
    for layer in layers:
        values.update({k: v for k, v in layer.items() if k in SAMPLING_KEYS and v is not None})
    sampling = Sampling(**values)
    _check(sampling)
    return sampling, cli_preset or config_preset or "deepseek"


def _check(s: Sampling) -> None:
    if not 0 <= s.temperature <= 5:
        raise UsageError(f"temperature must be between 0 and 5, not {s.temperature}")
    if not 0 < s.top_p <= 1:
        raise UsageError(f"top-p must be in (0, 1], not {s.top_p}")
    if s.max_tokens is not None and s.max_tokens < 1:
        raise UsageError(f"max-tokens must be at least 1, not {s.max_tokens}")


def resolve(config: Config, cli: dict[str, Any]) -> Settings:
    """Merge config and command-line values (`None` on the command line means unset)."""
    model_cfg, reasoning = config.section("model"), config.section("reasoning")
    sampling, preset = _sampling(config, cli)
    budget = _first(cli.get("think_budget"), reasoning.get("think_budget"))
    if budget is not None and budget < 1:
        raise UsageError(f"think-budget must be at least 1, not {budget}")
    loop_guard = cli.get("loop_guard")
    if loop_guard is None:
        loop_guard = bool(reasoning.get("loop_guard", True))
    n_ctx = _first(cli.get("n_ctx"), model_cfg.get("ctx"))
    if n_ctx is not None and n_ctx < 64:
        raise UsageError(f"context size must be at least 64 tokens, not {n_ctx}")
    return Settings(
        # with --endpoint, -m names the served model: a local default would not do
        model=_first(cli.get("model"), None if cli.get("endpoint") else model_cfg.get("default")),
        n_ctx=n_ctx,
        gpu_layers=_first(cli.get("gpu_layers"), model_cfg.get("gpu_layers")),
        threads=_first(cli.get("threads"), model_cfg.get("threads")),
        sampling=sampling,
        preset=preset,
        system=_first(cli.get("system"), config.get("chat", "system_prompt")) or "",
        guards=Guards(think_budget=budget, loop_guard=loop_guard),
        think=not cli.get("no_think") and reasoning.get("think", True) is not False,
        math=bool(cli.get("math")) or reasoning.get("math") is True,
        endpoint=cli.get("endpoint"),
        api_key_env=cli.get("api_key_env"),
    )


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)
