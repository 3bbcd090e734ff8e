"""The model manager (ctrl+o, or "Models: manage…" in the command palette).

The table `r1chat models` prints — catalog and imported models, size, a fit badge for
this machine at the chat's context size, installed / partial / default marks — with keys
on the selected row: pull (a live progress bar with bytes, speed and ETA; esc or c
cancels and keeps the partial file for the next pull), delete (after a confirmation),
set as the default, and use now (the screen is dismissed with the model's name, and the
app loads it). `/` searches the Hub (`screens.hub_search`) for any GGUF repo and pulls the
quantization picked there.

The pull itself, its thread and its progress bar are the `PullPanel` widget
(r1chat.tui.widgets.pull_panel); its end comes back as a one-line notification.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from r1chat.core.errors import R1ChatError
from r1chat.core.printable import printable
from r1chat.core.request import DEFAULT_CTX
from r1chat.core.units import human
from r1chat.models import store
from r1chat.models.listing import ModelRow, hardware_line, model_rows
from r1chat.tui.model_text import (
    BADGE_COLOURS,
    COLUMNS,
    LEGEND,
    describe,
    marks,
)
from r1chat.tui.widgets.dialogs import ConfirmScreen, PathSuggester, TextPromptScreen
from r1chat.tui.widgets.pull_panel import Pull, PullPanel

if TYPE_CHECKING:
    from r1chat.config.file import Config
    from r1chat.models.catalog import Catalog
    from r1chat.models.hardware import Hardware
    from r1chat.models.hub_repos import HubRepo

log = logging.getLogger("r1chat.tui")


# -- the screen --------------------------------------------------------------------------


class ModelsScreen(ModalScreen[str | None]):
    """The model manager; dismissed with the name of a model to use now, or None."""

    DEFAULT_CSS = Path(__file__).with_name("models.tcss").read_text(encoding="utf-8")

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "escape", "Close"),
        Binding("u", "use", "Use now", key_display="enter"),
        Binding("p", "pull", "Pull"),
        Binding("c", "cancel_pull", "Cancel pull"),
        Binding("d,delete", "delete", "Delete"),
        Binding("s", "set_default", "Set default"),
        Binding("i", "import_file", "Import a GGUF"),
        Binding("slash", "search_hub", "Search the Hub", key_display="/"),
        Binding("home", "first", "First", show=False, priority=True),
        Binding("end", "last", "Last", show=False, priority=True),
        Binding("q", "close", "Close", show=False),
    ]

    class _Machine(Message):
        def __init__(self, hw: Hardware | None, error: str | None = None) -> None:
            super().__init__()
            self.hw, self.error = hw, error

    def __init__(
        self,
        *,
        config: Config | None = None,
        in_use: str | None = None,
        n_ctx: int | None = None,
        catalog: Catalog | None = None,
        hardware: Hardware | None = None,
    ) -> None:
        """`config`: the app's (default and context size are read from it, and a new
        default is saved through it); `in_use`: the chat's model; `n_ctx`: the context
        size fits are computed for; `catalog` and `hardware` are found when not given."""
        super().__init__()
        self._config = config
        self._in_use = in_use
        self._n_ctx = n_ctx
        self._catalog = catalog
        self.hw = hardware
        self.rows: dict[str, ModelRow] = {}
        self.ready = False  # the table has been filled once
        self.puller = PullPanel(id="models-pull")

    # -- layout -----------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Vertical(id="models-box") as box:
            box.border_title = "Models"
            box.border_subtitle = LEGEND
            yield Static("Looking at this machine…", id="models-machine")
            yield Static("", id="models-error")
            yield DataTable(
                id="models-table",
                cursor_type="row",
                cursor_foreground_priority="renderable",
            )
            yield Static("", id="models-detail")
            yield self.puller
        yield Footer()

    @property
    def pull(self) -> Pull | None:
        """The pull running, if one is."""
        return self.puller.current

    @property
    def table(self) -> DataTable[object]:
        return self.query_one("#models-table", DataTable)

    @property
    def config(self) -> Config:
        if self._config is None:
            from r1chat.config.file import Config

            self._config = Config.load()
        return self._config

    @property
    def n_ctx(self) -> int:
        if self._n_ctx:
            return self._n_ctx
        return self.config.values.model.ctx or DEFAULT_CTX

    def on_mount(self) -> None:
        table = self.table
        for label, key in COLUMNS:
            table.add_column(Text(label, justify="right" if key == "size" else "left"), key=key)
        table.focus()
        if self.hw is not None:
            self._fill()
        else:
            self._detect()

    def on_unmount(self) -> None:
        if self.pull is not None:  # closing (or quitting) stops the download
            self.pull.cancel.set()

    @work(thread=True, exit_on_error=False, group="hardware")
    def _detect(self) -> None:
        from r1chat.models import hardware

        try:
            self.post_message(self._Machine(hardware.current()))
        except Exception as e:  # a probe failed: say so, keep the screen
            log.exception("hardware detection failed")
            self.post_message(self._Machine(None, f"cannot read this machine's memory: {e}"))

    @on(_Machine)
    def _machine(self, message: _Machine) -> None:
        if message.hw is None:
            self._show_error(message.error or "cannot read this machine's memory")
            return
        self.hw = message.hw
        self._fill()

    # -- the table --------------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            from r1chat.models.catalog import load_catalog

            return load_catalog()
        return self._catalog

    def _show_error(self, text: str) -> None:
        error = self.query_one("#models-error", Static)
        error.update(Text(printable(text)))
        error.display = True

    def _fill(self) -> None:
        """(Re)build the rows, keeping the cursor on the same model."""

        assert self.hw is not None
        try:
            catalog = self.catalog
            default = store.default_model(self.config, catalog)
            rows = model_rows(catalog, self.hw, self.n_ctx, default=default, in_use=self._in_use)
        except R1ChatError as e:
            self._show_error(str(e))
            return
        self.query_one("#models-error", Static).display = False
        self.query_one("#models-machine", Static).update(
            Text(f"{hardware_line(self.hw)} · context {self.n_ctx:,}")
        )
        table = self.table
        selected = self.selected
        self.rows = {r.name: r for r in rows}
        table.clear()
        for row in rows:
            table.add_row(*self._cells(row), key=row.name)
        if selected is not None and selected.name in self.rows:
            table.move_cursor(row=table.get_row_index(selected.name), animate=False)
        self.ready = True
        self._show_detail()

    def _cells(self, row: ModelRow) -> tuple[Text, ...]:
        return (
            Text(marks(row)),
            Text(row.name, style="bold" if row.in_use else ""),
            Text(row.params),
            Text(row.quant),
            Text(human(row.size) if row.size else "-", justify="right"),
            self._badge(row),
            self._status(row),
        )

    def _badge(self, row: ModelRow) -> Text:
        if row.fit is None:
            return Text(row.badge, style="dim")
        colours = self.app.get_css_variables()
        return Text(row.badge, style=f"bold {colours.get(BADGE_COLOURS[row.fit.verdict], '')}")

    def _status(self, row: ModelRow) -> Text:
        pull = self.pull
        if pull is not None and pull.entry.name == row.name:
            return Text(f"pulling {pull.percent}%", style="bold")
        return Text(row.status, style="" if row.installed else "dim")

    @property
    def selected(self) -> ModelRow | None:
        table = self.table
        if not self.rows or table.row_count == 0:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        except Exception:  # no cursor row
            return None
        return self.rows.get(str(key.value))

    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        row = self.selected
        text = describe(row, self.n_ctx) if row is not None else ""
        if row is not None and self.pull is not None and self.pull.entry.name == row.name:
            text = text.split("\n")[0] + "\ndownloading · esc or c cancels (the part kept resumes)"
        self.query_one("#models-detail", Static).update(Text(printable(text)))

    @on(DataTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_use()

    # -- actions ----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        pulling = self.pull is not None
        if action == "cancel_pull":
            return pulling  # shown only while a pull runs
        if action == "pull":
            return None if pulling else True  # dimmed: one pull at a time
        return True

    def action_escape(self) -> None:
        """Esc cancels a pull; otherwise closes the screen."""
        if self.pull is not None:
            self.action_cancel_pull()
        else:
            self.dismiss(None)

    def action_cancel_pull(self) -> None:
        """Stop the pull; the partial file stays for the next pull to resume."""
        self.puller.cancel()

    def action_close(self) -> None:
        if self.pull is not None:
            self.pull.cancel.set()
            self.notify(
                f"Pull of {self.pull.entry.name} cancelled; the partial file is kept.", timeout=4
            )
        self.dismiss(None)

    def action_use(self) -> None:
        row = self.selected
        if row is None:
            return
        if row.remote and row.name not in self.config.values.remotes:
            self.notify(
                f'{row.name} runs on a server, not here: add [remotes."{row.name}"] '
                f'url = "http://HOST:8000/v1" to {self.config.path}',
                severity="warning",
                timeout=8,
            )
            return
        if not row.remote and not row.installed:
            how = "resume it" if row.partial else "pull it"
            self.notify(f"{row.name} is not installed yet: press p to {how}.", timeout=5)
            return
        if self.pull is not None and self.pull.entry.name == row.name:
            self.notify(f"{row.name} is still downloading.", timeout=4)
            return
        self.dismiss(row.name)

    def action_first(self) -> None:
        self.table.move_cursor(row=0)

    def action_last(self) -> None:
        self.table.move_cursor(row=max(0, self.table.row_count - 1))

    def action_import_file(self) -> None:
        """Register a GGUF already on disk (no network needed): a path, with completion."""
        dialog = TextPromptScreen(
            "Import a GGUF file you already have (→ completes the path; it stays where it is):",
            str(Path.cwd()) + os.sep,
            suggester=PathSuggester(".gguf"),
        )
        self.app.push_screen(dialog, self._import)

    def _import(self, path: str | None) -> None:
        if not path or not path.strip():
            return
        try:
            record = store.import_model(path.strip(), catalog=self.catalog)
        except R1ChatError as e:
            self.notify(str(e), title="Import", severity="error", timeout=8)
            return
        self.notify(f"Imported {record.name} ({human(record.size)}): enter uses it.", timeout=5)
        self._fill()
        self.table.move_cursor(row=self.table.get_row_index(record.name), animate=False)
        self._show_detail()

    def action_set_default(self) -> None:
        row = self.selected
        if row is None:
            return
        try:
            value = store.set_default_model(row.name, catalog=self.catalog, config=self.config)
        except (R1ChatError, OSError) as e:
            self.notify(str(e), title="Default model", severity="error", timeout=8)
            return
        note = "" if row.installed or row.remote else " (not installed yet: p pulls it)"
        self.notify(f"Default model: {value}{note}", timeout=4)
        self._fill()

    def action_delete(self) -> None:
        row = self.selected
        if row is None:
            return
        if self.pull is not None and self.pull.entry.name == row.name:
            self.notify(f"{row.name} is downloading: cancel the pull first (esc).", timeout=5)
            return
        try:
            removal = store.plan_removal(row.name, catalog=self.catalog)
        except R1ChatError as e:
            self.notify(str(e), severity="warning", timeout=5)
            return
        if removal.forget_only:
            question = f"Forget the imported model {removal.name}? Its file stays on disk."
            yes = "Forget"
        else:
            files = "1 file" if len(removal.paths) == 1 else f"{len(removal.paths)} files"
            question = f"Delete {removal.name}: {files}, {human(removal.bytes)}?"
            yes = "Delete"
        if row.in_use:
            question += " The chat is using it: it stays loaded until you switch models."

        def done(answer: bool | None) -> None:
            if answer:
                self._remove(row.name)

        self.app.push_screen(ConfirmScreen(question, yes=yes), done)

    def _remove(self, name: str) -> None:
        try:
            removal = store.remove_model(name, catalog=self.catalog)
        except (R1ChatError, OSError) as e:
            self.notify(str(e), title="Delete", severity="error", timeout=8)
            return
        freed = f", freed {human(removal.bytes)}" if removal.bytes else ""
        self.notify(f"Removed {removal.name}{freed}.", timeout=4)
        self._fill()

    # -- the Hub ----------------------------------------------------------------------

    def action_search_hub(self) -> None:
        from r1chat.tui.screens.hub_search import HubSearchScreen

        if self.hw is None:
            return
        self.app.push_screen(HubSearchScreen(self.catalog, self.hw, self.n_ctx), self._hub_chosen)

    def _hub_chosen(self, choice: tuple[HubRepo, str] | None) -> None:
        """Record the repo's quantization as a model (as `models pull OWNER/REPO:QUANT`
        does), show it in the table and pull it."""
        from r1chat.models import hub_repos

        if choice is None:
            return
        found, quant = choice
        try:
            name = hub_repos.register(found, quant, self.catalog)
        except R1ChatError as e:
            self.notify(str(e), title="Hub", severity="error", timeout=10)
            return
        self._catalog = None  # reloaded with it
        self._fill()
        row = next((r for r in self.rows.values() if r.entry and r.entry.variant == name), None)
        if row is None:
            return
        self.table.move_cursor(row=self.table.get_row_index(row.name), animate=False)
        self.action_pull()

    # -- pulling ----------------------------------------------------------------------

    def action_pull(self) -> None:
        row = self.selected
        if row is None:
            return
        if self.pull is not None:
            self.notify(f"Already pulling {self.pull.entry.name}; one at a time.", timeout=4)
            return
        if row.entry is None:
            self.notify(f"{row.name} is an imported file: nothing to download.", timeout=4)
            return
        if row.remote:
            self.notify(f"{row.name} is too big to download and run here.", timeout=5)
            return
        if row.installed:
            self.notify(f"{row.name} is already installed.", timeout=3)
            return
        self.set_class(True, "-pulling")
        self.puller.start(row.entry, row.size, row.have)
        self.refresh_bindings()
        self._refresh_row(row.name)
        self._show_detail()
        table = self.table
        self.call_after_refresh(lambda: table.move_cursor(row=table.cursor_row))  # in view

    @on(PullPanel.Changed)
    def _pull_changed(self, message: PullPanel.Changed) -> None:
        self._refresh_row(message.name)

    def _refresh_row(self, name: str) -> None:
        row = self.rows.get(name)
        if row is not None:
            self.table.update_cell(name, "status", self._status(row))

    @on(PullPanel.Ended)
    def _ended(self, message: PullPanel.Ended) -> None:
        entry = message.entry
        self.puller.done()
        self.set_class(False, "-pulling")
        self.refresh_bindings()
        if message.result is not None:
            checks = set(message.result.checks)
            how = " (sha256 verified)" if checks == {"sha256"} else ""
            if message.result.already:
                self.notify(f"{entry.name} is already installed.", timeout=3)
            else:
                self.notify(f"Pulled {entry.name}{how}: press enter to use it.", timeout=5)
        elif message.cancelled:
            have = store.state(entry).have
            self.notify(
                f"Pull of {entry.name} cancelled: {human(have)} kept; p resumes it.", timeout=5
            )
        else:
            self.notify(
                message.error or "the pull failed", title="Pull", severity="error", timeout=10
            )
        self._fill()
