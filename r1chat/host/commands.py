"""What a front end asks of the model host: typed commands, each a job with an id (but
`Cancel` and `Quit`), dispatched in one place (`Worker.handle`); `Start` opens a model
process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from r1chat.config.settings import Settings
from r1chat.core.messages import Message
from r1chat.core.overflow import Overflow
from r1chat.core.request import Request
from r1chat.core.turn import Guards
from r1chat.engine.base import Engine

EngineFactory = Callable[[Settings, "str | None"], Engine]
"""Opens the engine `Settings` describe (`settings.model`: a name, path or remote), under
a name for its info (None: the model's own). A module-level function, so a model process
can be handed it (pickled by reference): `launch.engines.open_engine`, `open_served`."""


@dataclass(frozen=True, slots=True)
class Model:
    """A model the host can load: `settings` say what and how, `name` what it is called
    (None: the GGUF's own name). Two equal `Model`s are one resident model."""

    settings: Settings
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.settings.model or ""

    def serves(self, wanted: Model) -> bool:
        """Whether this model, loaded, answers a reply asked of `wanted`: the same model,
        or one with a larger context (a server grew it for a longer prompt)."""
        if self == wanted:
            return True
        ours, theirs = self.settings.n_ctx or 0, wanted.settings.n_ctx or 0
        same = replace(self.settings, n_ctx=None) == replace(wanted.settings, n_ctx=None)
        return self.name == wanted.name and same and ours >= theirs


@dataclass(frozen=True, slots=True)
class Start:
    """The first command a model process gets: how to open engines, where replies are
    saved (None: nowhere), and whether to join text items before sending them (the chat:
    one chunk per frame; `serve` keeps a delta per token, as its clients see them)."""

    open_engine: EngineFactory
    history: Path | None = None
    join_text: bool = False


@dataclass(frozen=True, slots=True)
class Load:
    """Make `model` the resident one (`Loading`, then `Loaded` or `LoadFailed`)."""

    job: int
    model: Model


@dataclass(frozen=True, slots=True)
class Reply:
    """Generate a reply with `model` (loaded first if it is not resident).

    `raw`: continue this prompt as written (special tokens read as such), not a chat.
    `dry_run`: answer with the prompt as the model sees it (`Rendered`).
    `save_to`: the History message the reply is saved into as it streams.
    `overflow`: leave out the oldest exchanges that do not fit; None: a prompt that does
    not fit fails (`Why.TOO_LONG`; with `sizes`, saying how many tokens it has, counted up
    to the model's trained context, so a larger context can be asked for). `measure`:
    after the reply, say the context the conversation fills under that policy
    (`ContextUsed`: the chat's meter). `follow_up`: a next turn may come, so the
    conversation with this answer is read ahead while the model is idle (`Prefilled`);
    False where none comes (an eval's samples), whose slot is then free at once.
    """

    job: int
    model: Model
    request: Request
    guards: Guards
    raw: str | None = None
    dry_run: bool = False
    save_to: int | None = None
    overflow: Overflow | None = None
    sizes: bool = False
    measure: bool = False
    follow_up: bool = True


@dataclass(frozen=True, slots=True)
class Measure:
    """Say the context `messages` fill as the next prompt (`ContextUsed`), after the
    overflow policy; nothing when `model` is not resident."""

    job: int
    model: Model
    messages: tuple[Message, ...]
    request: Request
    overflow: Overflow


@dataclass(frozen=True, slots=True)
class Cancel:
    """Stop job `job` (a reply ends as stopped; one still waiting never starts)."""

    job: int


@dataclass(frozen=True, slots=True)
class Quit:
    """Stop every job, close the engine, end (replies are saved as stopped)."""


Job = Load | Reply | Measure
Command = Job | Cancel | Quit
"""What a started model process takes (`Start` comes first, once)."""
