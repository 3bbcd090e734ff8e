"""The TUI's model manager through Pilot: the real chat app, a loopback Hugging Face Hub
(`tests.fixtures.hub_server`), real downloads of small GGUF files, the real llama.cpp load.

The catalog is the built-in one plus a user catalog (`R1CHAT_CATALOG`) with two tiny
models: `tiny:1b` is the scripted answer model (it loads and answers), `tiny:3b` is
4 MB of GGUF-looking bytes served slowly, for the progress bar and cancelling.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, ProgressBar, Static

from r1chat.config.file import Config
from r1chat.config.settings import Settings
from r1chat.core.units import Meter, clock, human
from r1chat.history.store import History
from r1chat.models import download, hardware, store
from r1chat.models.catalog import build, load_catalog, parse
from r1chat.models.fit import Verdict
from r1chat.models.hardware import Gpu, Hardware
from r1chat.models.listing import model_rows
from r1chat.tui.model_text import describe, marks, progress_text
from r1chat.tui.screens.models import ModelsScreen
from r1chat.tui.widgets.dialogs import ConfirmScreen, TextPromptScreen
from tests.fixtures.hub_server import FakeHub, make_gguf_bytes, point_client_at
from tests.fixtures.scripted import ScriptedModel
from tests.tui.pilot import run_async, wait_for

GB = 10**9
CPU_BOX = Hardware(32 * GB, 24 * GB, 8, (), "CPU")
GPU_BOX = Hardware(
    32 * GB, 24 * GB, 8, (Gpu("NVIDIA RTX 4070", 12 * GB, 11 * GB, "NVIDIA"),), "CUDA"
)

TINY, TINY_REPO, TINY_FILE = "tiny:1b", "acme/Tiny-R1-GGUF", "Tiny-R1-Q4_K_M.gguf"
BIG, BIG_REPO, BIG_FILE = "tiny:3b", "acme/Tiny3-R1-GGUF", "Tiny3-R1-Q4_K_M.gguf"
BIG_SIZE = 4_000_000


def user_catalog(tiny_size: int, tiny_sha: str) -> str:
    common = 'layers = 2\nkv_heads = 1\nhead_dim = 16\ncontext = 2048\nlicense = "MIT"\n'
    return f"""
[models."{TINY}"]
title = "Tiny R1 1B"
repo = "{TINY_REPO}"
params = 1000000000
{common}
[models."{TINY}".quants.Q4_K_M]
file = "{TINY_FILE}"
size = {tiny_size}
sha256 = "{tiny_sha}"

[models."{BIG}"]
title = "Tiny R1 3B"
repo = "{BIG_REPO}"
params = 3000000000
{common}
[models."{BIG}".quants.Q4_K_M]
file = "{BIG_FILE}"
size = {BIG_SIZE}
"""


@pytest.fixture
def big_data() -> bytes:
    return make_gguf_bytes(BIG_SIZE, seed=3)


@pytest.fixture
def hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer_model: ScriptedModel, big_data: bytes
) -> Iterator[FakeHub]:
    """The loopback Hub serving both tiny models, the user catalog naming them, and a
    fixed machine (32 GB of RAM, CPU-only llama.cpp)."""
    for var in ("R1CHAT_MODELS", "HF_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    tiny = answer_model.path.read_bytes()
    cat = tmp_path / "models.toml"
    cat.write_text(user_catalog(len(tiny), hashlib.sha256(tiny).hexdigest()), encoding="utf-8")
    monkeypatch.setenv("R1CHAT_CATALOG", str(cat))
    monkeypatch.setattr(hardware, "_detected", CPU_BOX)
    with FakeHub() as h:
        h.add(TINY_REPO, TINY_FILE, answer_model.path)
        h.add(BIG_REPO, BIG_FILE, big_data)
        point_client_at(h, monkeypatch, tmp_path)
        yield h


def chat_app(model: str | None = None):  # -> ChatApp
    from r1chat.session.runner import in_child_process
    from r1chat.tui.app import ChatApp

    return ChatApp(
        Settings(model=model, n_ctx=2048),
        config=Config.load(),
        history=History(),
        runner=in_child_process,
    )


def answered(app) -> bool:  # app: ChatApp
    """The chat's last prompt has its whole answer."""
    session = app.chat.session
    exchanges = session.dialogue.exchanges
    return session.current is None and bool(exchanges) and bool(exchanges[-1].answer)


async def open_screen(pilot: Pilot[object]) -> ModelsScreen:
    await pilot.press("ctrl+o")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ModelsScreen))
    screen = pilot.app.screen
    assert isinstance(screen, ModelsScreen)
    await wait_for(pilot, lambda: screen.ready)
    return screen


async def select(pilot: Pilot[object], screen: ModelsScreen, name: str) -> None:
    table = screen.table
    table.move_cursor(row=table.get_row_index(name))
    await pilot.pause()
    assert screen.selected is not None and screen.selected.name == name


def cell(screen: ModelsScreen, name: str, column: str) -> str:
    return str(screen.table.get_cell(name, column))


def entry(name: str):  # -> Entry
    return load_catalog().require(name)


# -- opening it ---------------------------------------------------------------------------


@run_async
async def test_opens_from_the_key_and_lists_catalog_and_installed_models_with_fit_badges(
    hub: FakeHub, answer_model: ScriptedModel
) -> None:
    download.pull(entry(TINY))
    store.import_model(answer_model.path, name="mine")
    app = chat_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(pilot)
        names = list(screen.rows)
        assert names[:2] == ["r1:1.5b", "r1:1.5b-q5_k_m"]
        assert {"r1:7b", "r1:70b", "r1:671b", TINY, BIG, "mine"} <= set(names)
        # the same verdicts as `r1chat models` on this (fixed) machine
        assert cell(screen, "r1:7b", "fit") == "CPU"
        assert cell(screen, "r1:70b", "fit") == "won't fit"
        assert cell(screen, "r1:671b", "fit") == "server"
        assert cell(screen, "r1:671b", "status") == "remote only"
        assert cell(screen, TINY, "status") == "installed"
        assert cell(screen, BIG, "status") == ""
        assert cell(screen, "mine", "status") == "imported"
        assert screen.rows["r1:7b"].fit is not None
        assert screen.rows["r1:7b"].fit.verdict is Verdict.CPU
        # the badge is coloured by verdict
        badge = screen.table.get_cell("r1:70b", "fit")
        assert badge.style and "bold" in str(badge.style)
        assert str(badge.style) != str(screen.table.get_cell("r1:7b", "fit").style)
        # the default (r1:7b is not installed, so the first installed one) is marked
        assert cell(screen, TINY, "marks").strip() == "*"
        await select(pilot, screen, BIG)
        detail = str(screen.query_one("#models-detail", Static).render())
        assert "Tiny R1 3B Q4_K_M: CPU only" in detail and "p pulls it (4.0 MB)" in detail
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ModelsScreen))


@run_async
async def test_opens_from_the_command_palette(hub: FakeHub) -> None:
    app = chat_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Models: manage")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelsScreen))
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        await wait_for(pilot, lambda: screen.ready)
        assert TINY in screen.rows


# -- pulling ------------------------------------------------------------------------------


@run_async
async def test_pull_shows_live_progress_and_ends_installed_and_verified(
    hub: FakeHub, big_data: bytes
) -> None:
    hub.hold(BIG_FILE, 2_500_000)  # mid-file until the progress was seen; once per MiB
    app = chat_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(pilot)
        await select(pilot, screen, BIG)
        await pilot.press("p")
        assert screen.pull is not None and screen.has_class("-pulling")
        bar = screen.query_one("#models-bar", ProgressBar)
        assert bar.display and screen.query_one("#models-pull").display
        await wait_for(pilot, lambda: 0 < (bar.progress or 0) < BIG_SIZE)
        assert bar.total == BIG_SIZE
        assert cell(screen, BIG, "status").startswith("pulling ")
        figures = screen.query_one("#models-pull-figures", Static)
        await wait_for(pilot, lambda: "/s · ETA" in str(figures.render()))
        assert f"/ {human(BIG_SIZE)}" in str(figures.render())
        hub.release()
        await wait_for(pilot, lambda: screen.pull is None)
        assert not screen.has_class("-pulling")
        assert cell(screen, BIG, "status") == "installed"
        path = store.entry_paths(entry(BIG))[0]
        assert path.read_bytes() == big_data  # sha256-checked before it got its name
        assert not store.part_path(path).exists()
    assert any("Pulled tiny:3b (sha256 verified)" in str(n.message) for n in app._notifications)


@run_async
async def test_cancel_keeps_the_partial_download_and_shows_it(
    hub: FakeHub, big_data: bytes
) -> None:
    hub.hold(BIG_FILE, 2_500_000)  # then silent: the cancel must cut a waiting read
    app = chat_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(pilot)
        await select(pilot, screen, BIG)
        await pilot.press("p")
        bar = screen.query_one("#models-bar", ProgressBar)
        await wait_for(pilot, lambda: (bar.progress or 0) >= 1 << 20)
        await pilot.press("escape")  # cancels the pull, leaves the screen open
        await wait_for(pilot, lambda: screen.pull is None)
        hub.release()
        assert app.screen is screen
        path = store.entry_paths(entry(BIG))[0]
        part = store.part_path(path)
        kept = part.stat().st_size
        assert 1 << 20 <= kept < BIG_SIZE and not path.exists()
        assert big_data.startswith(part.read_bytes())
        assert cell(screen, BIG, "status") == f"partial {kept * 100 // BIG_SIZE}%"
        detail = str(screen.query_one("#models-detail", Static).render())
        assert "partial download" in detail and "p resumes it" in detail
        # p resumes from the kept bytes
        before = len(hub.gets(BIG_FILE))
        await pilot.press("p")
        await wait_for(pilot, lambda: screen.pull is None)
        assert path.read_bytes() == big_data
        assert hub.gets(BIG_FILE)[before].range == f"bytes={kept}-"
        # the second esc closes the screen
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is not screen)


@run_async
async def test_a_failed_pull_is_one_line_not_a_traceback(hub: FakeHub) -> None:
    hub.fail_status(BIG_FILE, 404)
    app = chat_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(pilot)
        await select(pilot, screen, BIG)
        await pilot.press("p")
        await wait_for(pilot, lambda: screen.pull is None)
        errors = [n for n in app._notifications if n.severity == "error"]
        assert errors and "\n" not in str(errors[-1].message)
        assert BIG_FILE in str(errors[-1].message)
        assert app.screen is screen


# -- delete, default, use now -----------------------------------------------------------


@run_async
async def test_delete_asks_first_and_removes_the_files(hub: FakeHub) -> None:
    download.pull(entry(TINY))
    path = store.entry_paths(entry(TINY))[0]
    app = chat_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(pilot)
        await select(pilot, screen, TINY)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        question = str(app.screen.query_one(".dialog-text", Static).render())
        assert f"Delete {TINY}: 1 file, " in question
        await pilot.press("n")  # no: nothing happens
        await wait_for(pilot, lambda: app.screen is screen)
        assert path.is_file()
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen is screen)
        assert not path.exists() and not store.is_installed(entry(TINY))
        assert cell(screen, TINY, "status") == ""


@run_async
async def test_set_default_writes_the_config(hub: FakeHub) -> None:
    app = chat_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(pilot)
        await select(pilot, screen, BIG)
        await pilot.press("s")
        await pilot.pause()
        assert Config.load().get("model", "default") == BIG
        assert app.config.get("model", "default") == BIG  # the app's copy too
        assert cell(screen, BIG, "marks").strip() == "*"
        assert cell(screen, "r1:7b", "marks").strip() == ""


@run_async
async def test_use_now_switches_the_chats_model(hub: FakeHub, answer_model: ScriptedModel) -> None:
    app = chat_app()  # no model: the chat says so
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.chat.session.load_error is not None)
        screen = await open_screen(pilot)
        await select(pilot, screen, TINY)
        await pilot.press("enter")  # not installed yet: it says so and stays
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("p")
        await wait_for(pilot, lambda: screen.pull is None)
        assert cell(screen, TINY, "status") == "installed"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is not screen)
        assert app.chat.session.settings.model == TINY
        await wait_for(pilot, lambda: app.chat.session.info is not None)
        assert app.chat.session.load_error is None
        assert (
            app.chat.session.info is not None
            and app.chat.session.info.model in app.chat.status.text
        )
        assert "Loading" not in app.chat.status.text and "✖" not in app.chat.status.text
        # the chat answers with it
        await app.chat.send("What is 2 + 2?")
        await wait_for(pilot, lambda: answered(app))
        assert app.chat.session.dialogue.exchanges[-1].answer == answer_model.answer
        # and the screen now marks it as the one in use
        screen = await open_screen(pilot)
        assert cell(screen, TINY, "marks").startswith("▸")


@run_async
async def test_first_run_offline_says_both_ways_in_and_imports_a_gguf(
    hub: FakeHub, answer_model: ScriptedModel, tmp_path: Path
) -> None:
    """No model and no network: the chat names the two ways (pull, import); the models
    screen imports a file from a path typed with completion, and the chat uses it."""
    mine = tmp_path / "downloads" / "My-R1-Distill.gguf"
    mine.parent.mkdir()
    mine.write_bytes(answer_model.path.read_bytes())
    app = chat_app()
    async with app.run_test(size=(120, 34)) as pilot:
        await wait_for(pilot, lambda: app.chat.session.load_error is not None)
        hint = str(app.chat.query_one("#load-error").content)
        recommended = store.recommended_model(load_catalog())
        assert hint.startswith("No model yet. Press ctrl+o, then either pull " + recommended)
        assert "import a GGUF file you already have (i)" in hint
        assert f"r1chat models pull {recommended} · r1chat models import FILE" in hint
        screen = await open_screen(pilot)
        await pilot.press("end")  # End reaches the last row
        assert screen.table.cursor_row == screen.table.row_count - 1
        await pilot.press("home")
        assert screen.table.cursor_row == 0
        await pilot.press("i")
        field = await _dialog_input(pilot)
        field.value = str(mine.parent / "My-R1")
        field.cursor_position = len(field.value)  # as after typing it
        await wait_for(pilot, lambda: field._suggestion == str(mine))  # completion offered
        await pilot.press("right", "enter")  # accept it, import
        await wait_for(pilot, lambda: "my-r1-distill" in screen.rows)
        assert screen.selected is not None and screen.selected.name == "my-r1-distill"
        await pilot.press("enter")  # use it now
        await wait_for(pilot, lambda: app.chat.session.info is not None)
        assert (
            app.chat.session.settings.model == "my-r1-distill"
            and app.chat.session.load_error is None
        )
        assert str(store.resolve_model("my-r1-distill")) == str(mine)
        assert not any("Traceback" in n.message for n in app._notifications)


async def _dialog_input(pilot: Pilot[object]) -> Input:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, TextPromptScreen))
    return pilot.app.screen.query_one("#answer", Input)


# -- pieces --------------------------------------------------------------------------------


def test_meter_speed_and_eta() -> None:
    now = [0.0]
    meter = Meter(window=3.0, clock=lambda: now[0])
    assert meter.speed == 0 and meter.eta(100) is None
    for t, done in [(0, 1000), (1, 3000), (2, 5000), (5, 11000)]:
        now[0] = t
        meter.add(done)
    assert meter.speed == pytest.approx(2000)  # over the last 3 s: (11000 - 5000) / 3
    assert meter.eta(21000) == pytest.approx(5)
    assert clock(None) == "–:––" and clock(72) == "1:12"
    assert clock(3725) == "1:02:05"


def test_progress_text() -> None:
    from r1chat.models.download import PullProgress

    now = [0.0]
    meter = Meter(clock=lambda: now[0])
    p = PullProgress(TINY, TINY_FILE, 1, 1, 2_000_000, 10_000_000, 2_000_000, "download")
    meter.add(p.done)
    assert progress_text(p, meter) == "2.0 MB / 10.0 MB · resuming from 2.0 MB"
    now[0] = 2.0
    p2 = PullProgress(TINY, TINY_FILE, 1, 1, 6_000_000, 10_000_000, 2_000_000, "download")
    meter.add(p2.done)
    assert progress_text(p2, meter) == "6.0 MB / 10.0 MB · 2.0 MB/s · ETA 0:02"
    v = PullProgress(TINY, TINY_FILE, 1, 1, 10_000_000, 10_000_000, 0, "verify")
    assert progress_text(v, meter) == f"10.0 MB · verifying {TINY_FILE}…"


def test_rows_mark_default_and_in_use_by_alias_too() -> None:
    catalog = build([("test", parse(user_catalog(1000, "0" * 64), "test"))])
    rows = {
        r.name: r for r in model_rows(catalog, GPU_BOX, 4096, default=BIG, in_use="tiny:1b-q4_k_m")
    }
    assert rows[BIG].default and not rows[BIG].in_use
    assert rows[TINY].in_use and marks(rows[TINY]) == "▸ "
    assert rows[TINY].badge == "GPU"
    assert "not installed · p pulls it (1 kB)" in describe(rows[TINY], 4096)


# -- the snapshot ---------------------------------------------------------------------------

SNAPSHOT_CATALOG = """
[models."r1:1.5b"]
title = "DeepSeek-R1-Distill-Qwen-1.5B"
repo = "bartowski/DeepSeek-R1-Distill-Qwen-1.5B-GGUF"
params = 1777088000
layers = 28
kv_heads = 2
head_dim = 128
context = 131072
[models."r1:1.5b".quants.Q4_K_M]
file = "DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf"
size = 1117320736
[models."r1:1.5b".quants.Q8_0]
file = "DeepSeek-R1-Distill-Qwen-1.5B-Q8_0.gguf"
size = 1894532128

[models."r1:7b"]
title = "DeepSeek-R1-Distill-Qwen-7B"
repo = "bartowski/DeepSeek-R1-Distill-Qwen-7B-GGUF"
params = 7615616512
layers = 28
kv_heads = 4
head_dim = 128
context = 131072
[models."r1:7b".quants.Q4_K_M]
file = "DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf"
size = 4683073184
[models."r1:7b".quants.Q8_0]
file = "DeepSeek-R1-Distill-Qwen-7B-Q8_0.gguf"
size = 8098525888

[models."r1:14b"]
title = "DeepSeek-R1-Distill-Qwen-14B"
repo = "bartowski/DeepSeek-R1-Distill-Qwen-14B-GGUF"
params = 14770033664
layers = 48
kv_heads = 8
head_dim = 128
context = 131072
[models."r1:14b".quants.Q4_K_M]
file = "DeepSeek-R1-Distill-Qwen-14B-Q4_K_M.gguf"
size = 8988110976

[models."r1:32b"]
title = "DeepSeek-R1-Distill-Qwen-32B"
repo = "bartowski/DeepSeek-R1-Distill-Qwen-32B-GGUF"
params = 32763876352
layers = 64
kv_heads = 8
head_dim = 128
context = 131072
[models."r1:32b".quants.Q4_K_M]
file = "DeepSeek-R1-Distill-Qwen-32B-Q4_K_M.gguf"
size = 19851336384

[models."r1:70b"]
title = "DeepSeek-R1-Distill-Llama-70B"
repo = "bartowski/DeepSeek-R1-Distill-Llama-70B-GGUF"
params = 70553706496
layers = 80
kv_heads = 8
head_dim = 128
context = 131072
[models."r1:70b".quants.Q4_K_M]
file = "DeepSeek-R1-Distill-Llama-70B-Q4_K_M.gguf"
size = 42520399936

[models."r1:671b"]
title = "DeepSeek-R1 (full)"
params = 671000000000
remote = true
note = "671B MoE: serve it with vLLM or SGLang"
"""


class ModelsHost(App[None]):
    TITLE = "r1chat"

    def __init__(self, screen: ModelsScreen) -> None:
        super().__init__()
        self._models = screen

    def on_mount(self) -> None:
        self.push_screen(self._models)


def test_snapshot(snap_compare: Callable[..., bool], monkeypatch: pytest.MonkeyPatch) -> None:
    """The screen at 100x30 on a fixed machine and catalog: an installed default, a model
    in use, a partial download, every fit verdict, a remote-only model."""
    catalog = build([("snapshot", parse(SNAPSHOT_CATALOG, "snapshot"))])
    one = store.entry_paths(catalog.require("r1:1.5b"))[0]
    one.parent.mkdir(parents=True)
    one.write_bytes(b"GGUF")
    seven = store.entry_paths(catalog.require("r1:7b"))[0]
    seven.parent.mkdir(parents=True)
    with store.part_path(seven).open("wb") as f:
        f.truncate(catalog.require("r1:7b").size * 42 // 100)  # sparse
    config = Config.load()
    config.set("model", "default", "r1:1.5b")
    screen = ModelsScreen(
        config=config, in_use="r1:7b-q8_0", n_ctx=8192, catalog=catalog, hardware=GPU_BOX
    )

    async def settle(pilot: Pilot[None]) -> None:
        await pilot.pause()
        screen.table.move_cursor(row=screen.table.get_row_index("r1:14b"))
        await pilot.pause()

    assert snap_compare(ModelsHost(screen), terminal_size=(100, 30), run_before=settle)


# -- the Hub ------------------------------------------------------------------------------

HUB_REPO = "tester/Scripted-R1-Distill-GGUF"


@run_async
async def test_search_the_hub_pick_a_quantization_pull_it_and_use_it(
    hub: FakeHub, answer_model: ScriptedModel, big_data: bytes
) -> None:
    from r1chat.tui.screens.hub_search import HubSearchScreen

    hub.add(HUB_REPO, "Scripted-R1-Q4_K_M.gguf", answer_model.path)
    hub.add(HUB_REPO, "Scripted-R1-Q8_0.gguf", big_data)
    hub.describe(HUB_REPO, downloads=42, params=1_000_000_000)
    app = chat_app()
    async with app.run_test(size=(120, 34)) as pilot:
        screen = await open_screen(pilot)
        await pilot.press("slash")
        await wait_for(pilot, lambda: isinstance(app.screen, HubSearchScreen))
        search = app.screen
        assert isinstance(search, HubSearchScreen)
        query = search.query_one("#hub-query", Input)
        query.value = "scripted-r1"
        await pilot.press("enter")
        await wait_for(pilot, lambda: bool(search.choices))
        table = search.query_one("#hub-table", DataTable)
        keys = [str(k.value) for k in table.rows]
        assert keys == [f"{HUB_REPO}:Q4_K_M", f"{HUB_REPO}:Q8_0"]  # smallest first
        assert str(table.get_cell(keys[0], "fit")) == "CPU"
        assert str(table.get_cell(keys[0], "quant")) == "Q4_K_M ★"  # what fits best
        await pilot.press("enter")  # the highlighted row: the one that fits best
        await wait_for(pilot, lambda: app.screen is screen)
        name = f"{HUB_REPO.lower()}"
        await wait_for(pilot, lambda: screen.pull is None and name in screen.rows)
        assert cell(screen, name, "status") == "installed"
        assert cell(screen, name, "quant") == "Q4_K_M"
        await pilot.press("enter")  # use it
        await wait_for(pilot, lambda: app.screen is not screen)
        await wait_for(pilot, lambda: app.chat.session.info is not None)
        await app.chat.send("What is 2 + 2?")
        await wait_for(pilot, lambda: answered(app))
        assert app.chat.session.dialogue.exchanges[-1].answer == answer_model.answer


@run_async
async def test_a_failed_hub_search_is_one_line(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    from r1chat.tui.screens.hub_search import HubSearchScreen

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    app = chat_app()
    async with app.run_test(size=(120, 34)) as pilot:
        await open_screen(pilot)
        await pilot.press("slash")
        await wait_for(pilot, lambda: isinstance(app.screen, HubSearchScreen))
        search = app.screen
        await pilot.press("enter")
        status = search.query_one("#hub-status", Static)
        await wait_for(pilot, lambda: "HF_HUB_OFFLINE is set" in str(status.render()))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelsScreen))
