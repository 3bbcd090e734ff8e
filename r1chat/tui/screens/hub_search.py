"""Search the Hub from the model manager (`/` there): GGUF repos and their quantizations,
each with its size and a fit badge for this machine, as `r1chat models search` lists them.

Enter on a row dismisses the screen with that repo and quantization; the model manager
records it and pulls it with its own progress bar. The search runs in a thread worker;
its failures are one line on the screen.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Static

from r1chat.core.errors import R1ChatError
from r1chat.core.units import human
from r1chat.tui.model_text import BADGE_COLOURS

if TYPE_CHECKING:
    from r1chat.models.catalog import Catalog
    from r1chat.models.hardware import Hardware
    from r1chat.models.hub_repos import HubRepo

Choice = tuple["HubRepo", str]
"""A repo and one of its quantizations."""


class HubSearchScreen(ModalScreen["Choice | None"]):
    """Type a query, enter; pick a row, enter: dismissed with (repo, quant) or None."""

    DEFAULT_CSS = Path(__file__).with_name("hub_search.tcss").read_text(encoding="utf-8")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss_none", "Back")]
    LIMIT = 20

    class Found(Message):
        def __init__(self, query: str, repos: list[HubRepo] | None, error: str = "") -> None:
            super().__init__()
            self.query, self.repos, self.error = query, repos, error

    def __init__(self, catalog: Catalog, hw: Hardware, n_ctx: int, query: str = "") -> None:
        super().__init__()
        self.catalog, self.hw, self.n_ctx, self.initial = catalog, hw, n_ctx, query
        self.choices: dict[str, Choice] = {}
        self.searching = False

    def compose(self) -> ComposeResult:
        from r1chat.models.hub_repos import DEFAULT_QUERY

        with Vertical(id="hub-box") as box:
            box.border_title = "Search the Hub"
            box.border_subtitle = f"GGUF repos · fit at {self.n_ctx:,} tokens (KV estimated)"
            yield Input(
                self.initial or DEFAULT_QUERY,
                placeholder="e.g. DeepSeek-R1 distill",
                id="hub-query",
            )
            yield Static("enter searches", id="hub-status")
            yield DataTable(id="hub-table", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#hub-table", DataTable)
        for label, key in (
            ("repository", "repo"),
            ("quant", "quant"),
            ("size", "size"),
            ("fit", "fit"),
            ("downloads", "downloads"),
        ):
            table.add_column(label, key=key)
        self.query_one("#hub-query", Input).focus()

    @on(Input.Submitted, "#hub-query")
    def _submitted(self, event: Input.Submitted) -> None:
        query = event.value.strip()
        if not query or self.searching:
            return
        self.searching = True
        self.query_one("#hub-status", Static).update(Text(f"searching the Hub for {query!r}…"))
        self._search(query)

    @work(thread=True, exit_on_error=False, group="hub-search")
    def _search(self, query: str) -> None:
        from r1chat.models import hub_repos

        try:
            self.post_message(self.Found(query, hub_repos.search(query, self.LIMIT)))
        except R1ChatError as e:
            self.post_message(self.Found(query, None, str(e)))

    @on(Found)
    def _found(self, message: Found) -> None:
        from r1chat.models.hub_repos import quant_fit

        self.searching = False
        status = self.query_one("#hub-status", Static)
        if message.repos is None:
            status.update(Text(message.error, style="bold red"))
            return
        table = self.query_one("#hub-table", DataTable)
        table.clear()
        self.choices.clear()
        colours = self.app.get_css_variables()
        best: str | None = None
        for repo in message.repos:
            pick = self._pick(repo)
            for i, q in enumerate(repo.quants.values()):
                fit = quant_fit(repo, q, self.catalog, self.hw, self.n_ctx)
                key = f"{repo.repo}:{q.quant}"
                self.choices[key] = (repo, q.quant)
                best = best or (key if q.quant == pick else None)
                badge = Text(fit.short, style=f"bold {colours.get(BADGE_COLOURS[fit.verdict], '')}")
                quant = Text(q.quant + (" ★" if q.quant == pick else ""))
                table.add_row(
                    Text(repo.repo if i == 0 else ""),
                    quant,
                    Text(human(q.size), justify="right"),
                    badge,
                    Text(f"{repo.downloads:,}" if i == 0 else "", justify="right"),
                    key=key,
                )
        if not self.choices:
            status.update(Text(f"no GGUF repositories match {message.query!r}"))
            return
        status.update(
            Text(
                f"{len(message.repos)} repos for {message.query!r} · ★ fits best · "
                "enter pulls the highlighted quantization"
            )
        )
        table.focus()
        if best is not None:
            table.move_cursor(row=table.get_row_index(best), animate=False)

    def _pick(self, repo: HubRepo) -> str | None:
        """The quantization `models pull OWNER/REPO` would take (None: none fits)."""
        from r1chat.models.hub_repos import choose_quant

        try:
            return choose_quant(repo, self.catalog, self.hw, self.n_ctx)[0]
        except R1ChatError:
            return None

    @on(DataTable.RowSelected, "#hub-table")
    def _chosen(self, event: DataTable.RowSelected) -> None:
        choice = self.choices.get(str(event.row_key.value))
        if choice is not None:
            self.dismiss(choice)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
