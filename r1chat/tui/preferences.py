"""The chat's settings: read from the config (over the command line), edited in the
settings screen, and written back to the TOML config.

Keys written: `[sampling] temperature, top_p, max_tokens`, `[model] default, ctx`,
`[chat] system_prompt, overflow`, `[reasoning] display, think_budget, loop_guard, think,
math`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from r1chat.config.file import Config
from r1chat.config.settings import Settings
from r1chat.core.turn import Guards


@dataclass(frozen=True, slots=True)
class ChatPrefs:
    """What the settings screen edits."""

    model: str | None
    temperature: float
    top_p: float
    max_tokens: int | None
    n_ctx: int | None
    system: str
    display: str  # "show" | "collapsed"
    think_budget: int | None
    loop_guard: bool
    think: bool
    math: bool
    overflow: str = "drop-oldest"  # core.overflow.POLICIES


def display_of(config: Config) -> str:
    return config.values.reasoning.display


def prefs_of(settings: Settings, display: str) -> ChatPrefs:
    s = settings.sampling
    return ChatPrefs(
        model=settings.model,
        temperature=s.temperature,
        top_p=s.top_p,
        max_tokens=s.max_tokens,
        n_ctx=settings.n_ctx,
        system=settings.system,
        display=display,
        think_budget=settings.guards.think_budget,
        loop_guard=settings.guards.loop_guard,
        think=settings.think,
        math=settings.math,
        overflow=settings.overflow.policy,
    )


def apply(settings: Settings, prefs: ChatPrefs) -> Settings:
    return replace(
        settings,
        model=prefs.model,
        n_ctx=prefs.n_ctx,
        sampling=replace(
            settings.sampling,
            temperature=prefs.temperature,
            top_p=prefs.top_p,
            max_tokens=prefs.max_tokens,
        ),
        system=prefs.system,
        guards=Guards(think_budget=prefs.think_budget, loop_guard=prefs.loop_guard),
        think=prefs.think,
        math=prefs.math,
        overflow=replace(settings.overflow, policy=prefs.overflow),
    )


_KEYS = {
    "temperature": ("sampling", "temperature"),
    "top_p": ("sampling", "top_p"),
    "max_tokens": ("sampling", "max_tokens"),
    "model": ("model", "default"),
    "n_ctx": ("model", "ctx"),
    "system": ("chat", "system_prompt"),
    "overflow": ("chat", "overflow"),
    "display": ("reasoning", "display"),
    "think_budget": ("reasoning", "think_budget"),
    "loop_guard": ("reasoning", "loop_guard"),
    "think": ("reasoning", "think"),
    "math": ("reasoning", "math"),
}


def save(config: Config, old: ChatPrefs, new: ChatPrefs) -> list[str]:
    """Write the preferences the user changed to the config file (atomically; raises
    OSError). Values that came from the command line and were left alone are not
    written. Returns the names of the changed fields."""
    changed = [name for name in _KEYS if getattr(old, name) != getattr(new, name)]
    for name in changed:
        section, key = _KEYS[name]
        value = getattr(new, name)
        config.set(section, key, value if value != "" else None)
    if changed:
        config.save()
    return changed


def save_display(config: Config, display: str) -> None:
    config.set("reasoning", "display", display)
    config.save()
