"""The chat UI through Pilot, with the scripted models run by the real llama.cpp.

Each test drives `ChatApp` headless (`App.run_test`): it types, presses keys and reads
the widgets; History is a real SQLite file under the test's R1CHAT_HOME.
"""

from __future__ import annotations

import os
import re
import signal
from dataclasses import replace
from pathlib import Path

import pytest
from textual import events
from textual.pilot import Pilot
from textual.widgets import Label, Static

from r1chat.config import paths
from r1chat.config.file import Config
from r1chat.config.settings import Settings
from r1chat.core.request import Sampling
from r1chat.core.turn import Guards
from r1chat.history.store import History
from r1chat.models import store
from r1chat.models.catalog import load_catalog
from r1chat.session.runner import in_child_process
from r1chat.tui.app import ChatApp
from r1chat.tui.screens.settings import SettingsScreen
from r1chat.tui.widgets.dialogs import ConfirmScreen, TextPromptScreen
from r1chat.tui.widgets.reasoning_pane import PaneTitle
from r1chat.tui.widgets.sidebar import ConversationItem
from r1chat.tui.widgets.turns import AssistantTurn, UserMessage
from tests.fixtures.scripted import BOXED, ScriptedModel
from tests.tui.pilot import SIZE, ask, make_app, ready, run_async, settle, wait_for

THOUGHT = re.compile(r"^Thought for \d+\.\ds · (\d+) tokens$")
ENDLESS_CTX = 32768  # the looping models then stream for many seconds before the context fills


# -- a turn, end to end ------------------------------------------------------------------


@run_async
async def test_send_shows_reasoning_beside_the_answer(answer_model: ScriptedModel) -> None:
    app = make_app(answer_model)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press(*"hello", "enter")
        await settle(pilot)
        turn = app.chat.transcript.query(AssistantTurn).last()
        assert app.query(UserMessage).last().text == "hello"
        m = THOUGHT.match(turn.reasoning.title)
        assert m, turn.reasoning.title
        assert int(m.group(1)) == answer_model.thinking_tokens + 1  # with `</think>`
        assert turn.reasoning.text == answer_model.reasoning.strip()
        assert turn.answer.text == answer_model.answer
        # side by side at 160 columns: the panes share a row
        assert turn.reasoning.region.y == turn.answer.region.y
        assert turn.answer.region.x > turn.reasoning.region.right
        status = app.chat.status.text
        assert "Scripted-Answer" in status and "CPU 1 thread" in status
        assert re.search(r"ctx [\d,]+/8,192", status) and "tok/s" in status and "TTFT" in status
        assert app.chat.prompt.text == ""
        # saved with its reasoning, stats, model and sampling
        [user, reply] = app.history.messages(app.chat.session.dialogue.id)
        assert (user.role, user.content) == ("user", "hello")
        assert reply.content == answer_model.answer
        assert reply.reasoning == answer_model.reasoning.strip()
        assert reply.finish_reason == "stop"
        assert reply.stats is not None and reply.stats["thinking_tokens"] > 0
        assert reply.sampling is not None and reply.sampling["temperature"] == 0.6
        assert reply.model == "DeepSeek-R1-Distill-Qwen-Scripted-Answer"


@run_async
async def test_narrow_terminal_stacks_reasoning_above_the_answer(
    answer_model: ScriptedModel,
) -> None:
    app = make_app(answer_model)
    async with app.run_test(size=(80, 24)) as pilot:
        turn = await ask(pilot, "hi")
        assert turn.answer.region.y > turn.reasoning.region.y
        assert turn.answer.region.x == turn.reasoning.region.x - 2 or turn.answer.region.x <= 3


@run_async
async def test_skipped_reasoning_says_so(nothink_model: ScriptedModel) -> None:
    app = make_app(nothink_model)
    async with app.run_test(size=SIZE) as pilot:
        turn = await ask(pilot, "hi")
        assert turn.reasoning.title == "No reasoning (the model answered directly)"
        assert turn.reasoning.empty
        assert turn.answer.text == nothink_model.answer


@run_async
async def test_no_think_mode_title(answer_model: ScriptedModel) -> None:
    app = make_app(answer_model, think=False)
    async with app.run_test(size=SIZE) as pilot:
        turn = await ask(pilot, "hi")
        assert turn.reasoning.title == "Reasoning off (no-think mode)"
        assert turn.reasoning.empty


@run_async
async def test_live_title_counts_while_thinking(loop_model: ScriptedModel) -> None:
    app = make_app(loop_model, guards=Guards(loop_guard=False), n_ctx=ENDLESS_CTX)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await app.chat.send("go")
        turn = app.chat.transcript.query(AssistantTurn).last()
        await wait_for(pilot, lambda: turn.reasoning.title.startswith("Thinking… "))
        assert re.match(r"^Thinking… \d+\.\ds · \d+ tokens$", turn.reasoning.title)
        app.simulate_key("escape")
        await settle(pilot)


# -- collapse -----------------------------------------------------------------------------


@run_async
async def test_collapse_one_pane_and_all(answer_model: ScriptedModel) -> None:
    config = Config.load()
    app = make_app(answer_model, config=config)
    async with app.run_test(size=SIZE) as pilot:
        first = await ask(pilot, "one")
        second = await ask(pilot, "two")
        assert not first.reasoning.collapsed and first.reasoning._trace.display
        title = first.reasoning.query_one(PaneTitle)
        await pilot.click(title)
        await pilot.pause()
        assert first.reasoning.collapsed and not second.reasoning.collapsed
        assert first.reasoning._trace.region.height == 0
        assert first.has_class("-stack")  # the answer takes the whole width
        title.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert not first.reasoning.collapsed
        await pilot.press("ctrl+t")  # every pane, and remembered
        await pilot.pause()
        assert first.reasoning.collapsed and second.reasoning.collapsed
        assert Config.load().get("reasoning", "display") == "collapsed"
    app = make_app(answer_model, config=Config.load())
    async with app.run_test(size=SIZE) as pilot:
        turn = await ask(pilot, "three")
        assert turn.reasoning.collapsed
        await pilot.press("ctrl+t")
        assert not turn.reasoning.collapsed
        assert Config.load().get("reasoning", "display") == "show"


# -- stopping, loops, regenerating --------------------------------------------------------


@run_async
async def test_escape_stops_the_loop_and_keeps_the_partial_reply(
    loop_model: ScriptedModel,
) -> None:
    app = make_app(loop_model, guards=Guards(loop_guard=False), n_ctx=ENDLESS_CTX)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await app.chat.send("loop")
        turn = app.chat.transcript.query(AssistantTurn).last()
        await wait_for(pilot, lambda: len(turn.reasoning.text) > 200)
        app.simulate_key("escape")
        await settle(pilot)
        assert turn.finish_reason == "cancelled"
        assert turn.reasoning.title.startswith("Stopped after ")
        assert turn.answer.status == "■ Stopped"
        partial = turn.reasoning.text
        assert partial.startswith(loop_model.reasoning.strip()) and len(partial) > 200
        [_, reply] = app.history.messages(app.chat.session.dialogue.id)
        assert reply.finish_reason == "cancelled"
        assert reply.reasoning.startswith(loop_model.reasoning.strip())
        assert len(reply.reasoning) >= 200
        # the app still works afterwards
        assert app.chat.session.current is None


@run_async
async def test_loop_guard_cuts_and_says_so(loop_model: ScriptedModel) -> None:
    app = make_app(loop_model)
    async with app.run_test(size=SIZE) as pilot:
        turn = await ask(pilot, "loop")
        assert turn.reasoning.title.endswith("· cut by the loop guard")
        assert "repeating itself" in str(turn.answer._notices.content)
        assert turn.answer.text.strip().endswith(loop_model.answer.strip())


@run_async
async def test_regenerate_replaces_the_last_reply(answer_model: ScriptedModel) -> None:
    app = make_app(answer_model)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "hello")
        first_id = app.chat.session.dialogue.exchanges[-1].reply_id
        await pilot.press("ctrl+r")
        await settle(pilot)
        turns = app.chat.transcript.query(AssistantTurn)
        assert len(turns) == 1 and turns.last().answer.text == answer_model.answer
        messages = app.history.messages(app.chat.session.dialogue.id)
        assert [m.role for m in messages] == ["user", "assistant"]
        assert messages[1].content == answer_model.answer
        assert first_id is not None and messages[1].id > first_id  # a new reply, not the old


@run_async
async def test_regenerate_while_streaming_stops_then_restarts(loop_model: ScriptedModel) -> None:
    app = make_app(loop_model, guards=Guards(loop_guard=False), n_ctx=ENDLESS_CTX)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await app.chat.send("x")
        first = app.chat.session.current
        turn = app.chat.transcript.query(AssistantTurn).last()
        await wait_for(pilot, lambda: len(turn.reasoning.text) > 50)
        app.simulate_key("ctrl+r")
        await wait_for(
            pilot,
            lambda: app.chat.session.current is not None and app.chat.session.current is not first,
        )
        app.simulate_key("escape")
        await settle(pilot)
        assert len(app.chat.transcript.query(AssistantTurn)) == 1
        assert [m.role for m in app.history.messages(app.chat.session.dialogue.id)] == [
            "user",
            "assistant",
        ]


@run_async
async def test_new_chat(answer_model: ScriptedModel) -> None:
    app = make_app(answer_model)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "first chat")
        first = app.chat.session.dialogue.id
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert not app.chat.transcript.query(AssistantTurn) and app.chat.session.dialogue.id is None
        await ask(pilot, "second chat")
        assert app.chat.session.dialogue.id not in (None, first)
        titles = [c.title for c in app.history.list_conversations()]
        assert titles == ["second chat", "first chat"]


@run_async
async def test_up_on_empty_prompt_edits_the_last_one(answer_model: ScriptedModel) -> None:
    app = make_app(answer_model)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "helo")
        await pilot.press("up")
        assert app.chat.prompt.text == "helo" and app.chat.editing == 0
        await pilot.press("left", "l", "enter")  # "hello"
        await settle(pilot)
        assert [w.text for w in app.query(UserMessage)] == ["hello"]
        assert "‹ 2/2 ›" in str(app.query_one(UserMessage).render())  # the typo is kept
        assert len(app.query(AssistantTurn)) == 1
        messages = app.history.messages(app.chat.session.dialogue.id)
        assert next((m.role, m.content) for m in messages) == ("user", "hello")
        assert len(messages) == 2


@run_async
async def test_multiline_prompt_and_big_paste(answer_model: ScriptedModel) -> None:
    app = make_app(answer_model)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("a", "ctrl+j", "b")
        assert app.chat.prompt.text == "a\nb"
        assert app.chat.prompt.region.height == 4  # grew by a line (border included)
        big = "\n".join(f"line {i}: " + "x" * 70 for i in range(60))  # fits the context
        app.chat.prompt.clear()
        app.post_message(events.Paste(big))  # as a terminal's bracketed paste arrives
        await pilot.pause()
        assert app.chat.prompt.text == big
        assert app.chat.prompt.region.height <= 10  # grows a few lines, then scrolls
        await pilot.press("enter")
        await settle(pilot)
        assert app.query(UserMessage).last().text == big


@run_async
async def test_copy_last_answer(answer_model: ScriptedModel) -> None:
    app = make_app(answer_model)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "hi")
        await pilot.press("ctrl+g")
        assert app.clipboard == answer_model.answer
        [note] = [n.message for n in app._notifications]
        assert note.startswith("Sent the last answer to the terminal's clipboard (OSC 52")
        assert "Copied" not in note  # the terminal never says whether it took it


@run_async
async def test_a_screenshot_says_where_it_went_or_why_not(
    answer_model: ScriptedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DOWNLOAD_DIR", str(tmp_path / "no-such-downloads"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no Downloads folder there either
    monkeypatch.chdir(tmp_path)
    app = make_app(answer_model)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        saved = app.deliver_screenshot()  # what the palette's "Screenshot" runs
        assert saved is not None and Path(saved).parent == tmp_path and Path(saved).is_file()
        blocker = tmp_path / "a-file"
        blocker.write_text("x")
        assert app.deliver_screenshot(path=str(blocker)) is None
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert messages[0] == f"Saved to {saved}"
        assert messages[1].startswith(f"Could not save it in {blocker}: ")
        assert messages[1] != f"Could not save it in {blocker}: "  # with the reason


@run_async
async def test_follows_the_stream_unless_scrolled_up(answer_loop_model: ScriptedModel) -> None:
    app = make_app(answer_loop_model, guards=Guards(loop_guard=False), n_ctx=ENDLESS_CTX)
    async with app.run_test(size=(80, 24)) as pilot:  # an endless answer
        await ready(pilot)
        await app.chat.send("go")
        t = app.chat.transcript
        await wait_for(pilot, lambda: t.max_scroll_y > 20)
        assert t.scroll_y == t.max_scroll_y  # it follows the stream
        # the user scrolls up while it streams (at once: a deferred scroll could land before
        # a layout that still follows, which no key or wheel of a user's waits for)
        t.scroll_home(animate=False, immediate=True)
        assert t.scroll_y == 0 and not t.following
        grown = t.max_scroll_y
        await wait_for(pilot, lambda: t.max_scroll_y > grown + 20)
        assert t.scroll_y == 0  # and stays where they put it
        t.scroll_end(animate=False)  # back at the bottom: following again
        await pilot.pause()
        grown = t.max_scroll_y
        await wait_for(pilot, lambda: t.max_scroll_y > grown + 20)
        await pilot.pause(0.2)
        assert t.scroll_y >= t.max_scroll_y - 5
        app.simulate_key("escape")
        await settle(pilot)


# -- errors a user can cause ----------------------------------------------------------------


@run_async
async def test_bad_model_path_is_a_readable_error(tmp_path: Path) -> None:
    app = make_app(tmp_path / "missing.gguf")
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        error = app.query_one("#load-error")
        assert error.display and "Cannot load the model" in str(error.content)
        assert "missing.gguf" in str(error.content)
        # a send is refused at once: nothing saved, the prompt stays
        app.chat.prompt.insert("Hello?")
        await pilot.press("enter")
        await pilot.pause()
        assert app.chat.prompt.text == "Hello?"
        assert not app.chat.transcript.query(UserMessage)
        assert app.history.list_conversations() == []
        assert any(n.message.startswith("No model to answer: ") for n in app._notifications)


async def crash_mid_reply(pilot: Pilot, sig: signal.Signals) -> tuple[AssistantTurn, int]:
    """Start an endless reply, send the model process `sig` once the reasoning streams,
    and wait for the chat to take it in; the turn and the dead process's pid."""
    app = await ready(pilot)
    await app.chat.send("go")
    turn = app.chat.transcript.query(AssistantTurn).last()
    await wait_for(pilot, lambda: len(turn.reasoning.text) > 100)
    pid = app.chat.session.runner.pid
    assert pid is not None
    os.kill(pid, sig)
    await settle(pilot)
    return turn, pid


@run_async
async def test_a_crashed_model_process_is_an_error_and_the_chat_goes_on(
    loop_model: ScriptedModel,
) -> None:
    app = make_app(loop_model, guards=Guards(loop_guard=False), n_ctx=ENDLESS_CTX)
    async with app.run_test(size=SIZE) as pilot:
        turn, pid = await crash_mid_reply(pilot, signal.SIGKILL)  # as if llama.cpp crashed
        assert turn.answer.status.startswith("✖ the model process was killed by SIGKILL; see ")
        assert re.fullmatch(
            r"Thought for \d+\.\ds · \d+ tokens · cut by an error", turn.reasoning.title
        )  # not the live "Thinking…" for good
        log = (paths.log_dir() / "engine.log").read_text()
        assert f"the model process (pid {pid}) was killed by SIGKILL, with 1 job(s)" in log
        [_, reply] = app.history.messages(app.chat.session.dialogue.id)
        assert reply.finish_reason == "error" and reply.reasoning == turn.reasoning.text
        await wait_for(
            pilot, lambda: app.chat.session.info is not None
        )  # loaded again, in a new process
        assert app.chat.session.runner.pid != pid
        app.chat.session.settings = replace(
            app.chat.session.settings, guards=Guards()
        )  # let the next one end
        turn = await ask(pilot, "again")
        assert turn.finish_reason == "stop"


@run_async
async def test_a_crash_inside_the_model_process_leaves_its_stack_in_the_log(
    loop_model: ScriptedModel,
) -> None:
    app = make_app(loop_model, guards=Guards(loop_guard=False), n_ctx=ENDLESS_CTX)
    async with app.run_test(size=SIZE) as pilot:
        turn, pid = await crash_mid_reply(pilot, signal.SIGSEGV)  # a crash inside llama.cpp
        assert "was killed by SIGSEGV" in turn.answer.status
    log = (paths.log_dir() / "engine.log").read_text()
    assert "Fatal Python error: Segmentation fault" in log  # faulthandler, in the child
    assert f"the model process (pid {pid}) was killed by SIGSEGV" in log


@run_async
async def test_no_model_at_all(tmp_path: Path) -> None:
    app = ChatApp(Settings(), config=Config.load(), history=History(), runner=in_child_process)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        error = str(app.query_one("#load-error").content)
        name = store.recommended_model(load_catalog())
        assert error.startswith(f"No model yet. Press ctrl+o, then either pull {name} ")
        assert app.chat.session.load_error == (
            f"model {name} is not installed; run: r1chat models pull {name} (or use a GGUF "
            "you have: r1chat models import FILE)"
        )


# -- conversations --------------------------------------------------------------------------


@run_async
async def test_sidebar_lists_renames_searches_and_deletes(answer_model: ScriptedModel) -> None:
    app = make_app(answer_model)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "alpha question")
        await pilot.press("ctrl+n")
        await ask(pilot, "beta question")
        await pilot.press("ctrl+s")
        await pilot.pause()
        sidebar = app.chat.sidebar
        items = list(sidebar.listing.query(ConversationItem))
        assert [i.title_text for i in items] == ["beta question", "alpha question"]
        assert sidebar.query_one("#search").has_focus  # opening the sidebar: type to search
        # rename the highlighted one (the newest): the list's keys act when it has focus
        await pilot.press("down")
        assert sidebar.listing.has_focus
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, TextPromptScreen)
        app.screen.query_one("Input").value = ""  # type: ignore[attr-defined]
        await pilot.press(*"Renamed", "enter")

        def titles() -> list[str]:
            return [i.title_text for i in sidebar.listing.query(ConversationItem)]

        await wait_for(pilot, lambda: titles()[:1] == ["Renamed"])
        assert app.history.list_conversations()[0].title == "Renamed"
        # full-text search over answers and reasoning
        sidebar.query_one("#search").focus()
        await pilot.press(*"arith")  # a prefix of a word of the reasoning
        details = lambda: [str(d.content) for d in sidebar.listing.query(".conv-detail")]  # noqa: E731
        await wait_for(pilot, lambda: details() and "arith" in details()[0])  # hits, not the list
        assert sorted(titles()) == ["Renamed", "alpha question"]  # both reasoned "arithmetic"
        sidebar.query_one("#search").value = "alpha"  # type: ignore[attr-defined]
        await wait_for(pilot, lambda: titles() == ["alpha question"])
        # open it
        sidebar.listing.focus()
        sidebar.listing.index = 0
        await pilot.press("enter")
        await pilot.pause()
        assert [w.text for w in app.query(UserMessage)] == ["alpha question"]
        # delete with confirmation naming the chat; Enter (on Cancel) and "n" keep it
        sidebar.listing.focus()
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "alpha question" in str(app.screen.query_one(".dialog-text", Static).content)
        await pilot.press("enter")
        await pilot.pause()
        assert len(app.history.list_conversations()) == 2
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("n")
        await pilot.pause()
        assert len(app.history.list_conversations()) == 2
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await wait_for(pilot, lambda: len(app.history.list_conversations()) == 1)
        assert [c.title for c in app.history.list_conversations()] == ["Renamed"]
        assert not app.query(UserMessage)  # it was open: the chat was cleared


@run_async
async def test_history_survives_restart(answer_model: ScriptedModel) -> None:
    app = make_app(answer_model)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "remember me")
        conversation = app.chat.session.dialogue.id
    app.history.close()
    assert conversation is not None
    again = ChatApp(
        Settings(model=str(answer_model.path), threads=1),
        config=Config.load(),
        history=History(),
        runner=in_child_process,
        conversation_id=conversation,
    )
    async with again.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.pause()
        [turn] = again.chat.transcript.query(AssistantTurn)
        assert [w.text for w in again.query(UserMessage)] == ["remember me"]
        assert THOUGHT.match(turn.reasoning.title)
        assert turn.reasoning.text == answer_model.reasoning.strip()
        assert turn.answer.text == answer_model.answer
        # and the conversation goes on, with the earlier turn re-sent
        await ask(pilot, "and now?")
        assert len(again.history.messages(conversation)) == 4


@run_async
async def test_two_instances_share_the_database(answer_model: ScriptedModel) -> None:
    one, two = make_app(answer_model), make_app(answer_model)
    async with one.run_test(size=SIZE) as p1, two.run_test(size=SIZE) as p2:
        await ready(p1)
        await ready(p2)
        one.chat.prompt.insert("from one")
        two.chat.prompt.insert("from two")
        await p1.press("enter")
        await p2.press("enter")
        await settle(p1)
        await settle(p2)
        await ask(p1, "one again")
        await ask(p2, "two again")
        await p2.press("ctrl+s")
        await p2.pause()
        titles = {i.title_text for i in two.chat.sidebar.listing.query(ConversationItem)}
        assert titles == {"from one", "from two"}
    history = History()
    conversations = history.list_conversations()
    assert len(conversations) == 2
    for c in conversations:
        messages = history.messages(c.id)
        assert [m.role for m in messages] == ["user", "assistant"] * 2
        assert all(m.content for m in messages)


# -- settings --------------------------------------------------------------------------------


@run_async
async def test_settings_are_saved_to_the_config(answer_model: ScriptedModel) -> None:
    app = make_app(answer_model)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        app.chat.open_settings("temperature")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        screen.query_one("#temperature").value = "0.5"  # type: ignore[attr-defined]
        screen.query_one("#think_budget").value = "abc"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, SettingsScreen)  # a bad value keeps the form open
        assert "think budget" in str(screen.query_one("#settings-error").content)
        screen.query_one("#think_budget").value = "64"  # type: ignore[attr-defined]
        screen.query_one("#system").text = "Be brief."  # type: ignore[attr-defined]
        screen.query_one("#overflow").value = "stop"  # type: ignore[attr-defined]
        await pilot.click("#save")
        await pilot.pause()
        assert not isinstance(app.screen, SettingsScreen)
        assert app.chat.session.settings.sampling.temperature == 0.5
        assert app.chat.session.settings.guards.think_budget == 64
        assert app.chat.session.settings.system == "Be brief."
        assert app.chat.session.settings.overflow.policy == "stop"
        config = Config.load()
        assert config.get("sampling", "temperature") == 0.5
        assert config.get("reasoning", "think_budget") == 64
        assert config.get("chat", "system_prompt") == "Be brief."
        assert config.get("chat", "overflow") == "stop"
        assert config.get("sampling", "top_p") is None  # unchanged values are not written
        # and the next reply uses them
        turn = await ask(pilot, "hi")
        assert turn.finish_reason == "stop"
        reply = app.history.messages(app.chat.session.dialogue.id)[-1]
        assert reply.sampling is not None and reply.sampling["temperature"] == 0.5


@run_async
async def test_checkboxes_show_on_and_off_without_colour(answer_model: ScriptedModel) -> None:
    from textual.widgets import Checkbox

    app = make_app(answer_model)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        app.chat.open_settings("math")
        await pilot.pause()
        box = app.screen.query_one("#math", Checkbox)
        assert not box.value and "✓" not in str(box.render())
        box.focus()
        await pilot.press("space")
        await pilot.pause()
        assert box.value and "✓" in str(box.render())  # the mark itself says "on"


@run_async
async def test_settings_from_the_command_palette(answer_model: ScriptedModel) -> None:
    app = make_app(answer_model)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"top-p")

        def highlighted() -> str:
            from textual.command import CommandList

            options = app.screen.query(CommandList)
            if not options or options.first().highlighted is None:
                return ""
            lst = options.first()
            return str(lst.get_option_at_index(lst.highlighted).prompt)

        await wait_for(pilot, lambda: "Top-p" in highlighted())
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        assert app.screen.focused is not None and app.screen.focused.id == "top_p"
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, SettingsScreen)


# -- widgets on their own ---------------------------------------------------------------------


@run_async
async def test_math_mode_highlights_the_models_boxed_answer(boxed_model: ScriptedModel) -> None:
    app = make_app(boxed_model, math=True)
    async with app.run_test(size=SIZE) as pilot:
        turn = await ask(pilot, "Solve it.")
        assert turn.answer.text == boxed_model.answer
        assert turn.answer.has_class("-boxed") and turn.answer._boxed.region.height > 0
        assert str(turn.answer._boxed.content) == f"Final answer  {BOXED}"


@run_async
async def test_a_reply_cut_at_max_tokens_says_why(answer_model: ScriptedModel) -> None:
    app = make_app(answer_model, sampling=Sampling(max_tokens=5))
    async with app.run_test(size=SIZE) as pilot:
        turn = await ask(pilot, "2+2?")
        assert turn.answer.text == ""
        assert str(turn.answer._notices.content) == (
            "⚠ the reply reached max tokens (5) while still reasoning, so there is no answer; "
            "raise max tokens (--max-tokens)"
        )
        assert turn.answer.status == ""  # said once, not again as the generic note
        assert turn.reasoning.title.endswith("· cut by max tokens")


@run_async
async def test_an_ask_from_the_shell_opens_in_the_sidebar_and_goes_on(
    answer_model: ScriptedModel,
) -> None:
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "r1chat", "ask", "-m", str(answer_model.path), "from the shell"]
    assert subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True).returncode == 0
    app = make_app(answer_model)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        sidebar = app.chat.sidebar
        [item] = sidebar.listing.query(ConversationItem)
        assert item.title_text == "from the shell"
        detail = str(item.query_one(".conv-detail", Label).content)
        assert detail.startswith("ask · 1 prompt · ")
        sidebar.listing.focus()
        sidebar.listing.index = 0
        await pilot.press("enter")
        await pilot.pause()
        assert [w.text for w in app.query(UserMessage)] == ["from the shell"]
        await ask(pilot, "and then?")
        conversation = app.chat.session.dialogue.id
    [c] = app.history.list_conversations()
    assert (c.id, c.source, c.turns) == (conversation, "ask", 2)
    assert [m.content for m in app.history.messages(c.id)][3] == answer_model.answer


@run_async
async def test_typing_in_the_sidebar_searches_and_never_renames_or_deletes(
    answer_model: ScriptedModel,
) -> None:
    """The new user's accident: ctrl+s, then typing a search with r, d and y in it."""
    app = make_app(answer_model)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "thermals and gliders")
        await pilot.press("ctrl+n")
        await ask(pilot, "dry yeast")
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press(*"thermdry")
        await pilot.pause(0.3)
        assert not isinstance(app.screen, (TextPromptScreen, ConfirmScreen))
        assert app.chat.sidebar.search_text == "thermdry"
        shown = {key for key, b in app.screen.active_bindings.items() if b.binding.show}
        assert not {"r", "d"} & shown  # the footer does not offer them while searching
        await pilot.press("down")
        shown = {key for key, b in app.screen.active_bindings.items() if b.binding.show}
        assert {"r", "d"} <= shown  # on the list, it does
    titles = sorted(c.title for c in app.history.list_conversations())
    assert titles == ["dry yeast", "thermals and gliders"]


# -- sends that fail before any reply: nothing saved, the prompt back in the input ----------


@run_async
async def test_a_prompt_over_the_context_is_not_saved(answer_model: ScriptedModel) -> None:
    app = make_app(answer_model, n_ctx=256)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "2+2?")  # a first exchange that works
        long = "word " * 400
        for _ in range(3):  # retries do not pile up turns without replies
            app.chat.prompt.clear()
            app.chat.prompt.insert(long)
            await pilot.press("enter")
            await settle(pilot)
            assert app.chat.prompt.text == long
        assert len(app.chat.transcript.query(UserMessage)) == 1
        messages = app.history.messages(app.chat.session.dialogue.id)
        assert [m.role for m in messages] == ["user", "assistant"]
        assert any("context holds 256" in n.message for n in app._notifications)


@run_async
async def test_a_chat_that_outgrows_the_context_leaves_out_its_oldest_turns(
    answer_model: ScriptedModel,
) -> None:
    app = make_app(answer_model, n_ctx=128)
    async with app.run_test(size=SIZE) as pilot:
        for prompt in ("2+2?", "Again?", "Once more?", "And now?"):
            turn = await ask(pilot, prompt)
            assert turn.answer.text == answer_model.answer  # it keeps answering
        users = list(app.chat.transcript.query(UserMessage))
        left = [u.left_out for u in users]
        n = app.chat.session.left_out
        assert n >= 1 and left == [True] * n + [False] * (len(users) - n)
        assert users[0].border_title == "not sent: over the context"
        assert f"{n} earlier turn" in app.chat.status.text
        messages = app.history.messages(app.chat.session.dialogue.id)
        assert sum(m.role == "user" for m in messages) == 4  # the history keeps them all
        assert messages[-1].stats["turns_left_out"] == n
        await pilot.press("ctrl+n")  # a new chat starts with nothing left out
        await settle(pilot)
        assert app.chat.session.left_out == 0 and "not sent" not in app.chat.status.text


@run_async
async def test_idle_prefill_leaves_the_next_prompt_only_its_new_message(
    answer_model: ScriptedModel,
) -> None:
    from r1chat.core.messages import Message, prepare
    from r1chat.launch.local import open_local

    app = make_app(answer_model)  # the model runs in its own process, as in use
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "2+2?")
        await wait_for(pilot, lambda: app.chat.session.prefilled > 0)  # while the user types
        turn = await ask(pilot, "Again?")
        assert turn.answer.text == answer_model.answer
        stats = app.chat.session.last_stats
    conversation = [Message("user", "2+2?"), Message("assistant", answer_model.answer)]
    probe = open_local(answer_model.path, n_ctx=1024, threads=1)
    try:
        prefix = probe.builder.build(prepare(conversation), reply=False)
    finally:
        probe.close()
    assert stats is not None and stats.cached_tokens == len(prefix)


@run_async
async def test_enter_during_the_prefill_starts_the_reply_at_once(long_model: ScriptedModel) -> None:
    app = make_app(long_model, n_ctx=16384)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "Plan it.")  # a 1,500-token answer to prefill
        turn = await ask(pilot, "Again?")  # sent at once: the prefill gives way
        assert turn.answer.text == long_model.answer
        assert (
            app.chat.session.last_stats is not None
            and app.chat.session.last_stats.cached_tokens > 0
        )


# -- reading long reasoning -------------------------------------------------------------------


@run_async
async def test_long_reasoning_can_be_read(loop_model: ScriptedModel) -> None:
    """Streaming, the trace takes most of the screen; finished, it is compact but takes the
    keyboard (PageUp/Down, Home/End) and opens whole in the reader view, with search."""
    from r1chat.tui.screens.reader import ReaderScreen
    from r1chat.tui.widgets.reasoning_log import ReasoningLog

    app = make_app(loop_model, guards=Guards(loop_guard=False), n_ctx=ENDLESS_CTX)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await app.chat.send("go")
        turn = app.chat.transcript.query(AssistantTurn).last()
        log = turn.reasoning.query_one(ReasoningLog)
        await wait_for(pilot, lambda: log.region.height > 30)  # 48 rows: not capped at 16
        assert turn.reasoning.has_class("-streaming")
        await pilot.press("escape")  # stop it
        await settle(pilot)
        assert log.region.height == 16 and log.max_scroll_y > 20  # compact again, scrollable
        log.focus()
        await pilot.press("home")
        assert log.scroll_y == 0
        await pilot.press("pagedown")
        assert 0 < log.scroll_y < log.max_scroll_y
        await pilot.press("end")
        assert log.scroll_y == log.max_scroll_y
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ReaderScreen))
        reader = app.screen
        assert isinstance(reader, ReaderScreen)
        assert reader.log_view.region.height > 35 and reader.log_view.text == turn.reasoning.text
        assert reader.log_view.scroll_y == 0  # from the start
        await pilot.press(*"think")
        await pilot.pause()
        assert reader.matches == [0]  # "Okay, let me think." opens the trace
        await pilot.press("backspace", "backspace", "backspace", "backspace", "backspace")
        await pilot.press(*"again")
        await pilot.pause()
        rows = reader.matches
        assert len(rows) > 10 and reader.current == 0
        count = str(reader.query_one("#reader-count").content)
        assert count == f"1 of {len(rows)} lines with it · enter: next"
        for _ in range(len(rows) - 1):
            await pilot.press("enter")
        assert reader.current == len(rows) - 1
        assert reader.log_view.scroll_y <= rows[-1] < reader.log_view.scroll_y + 40  # shown
        await pilot.press("enter")
        assert reader.current == 0  # wraps around
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ReaderScreen))
        await pilot.press("ctrl+l")  # the last reply's reasoning, from anywhere in the chat
        await wait_for(pilot, lambda: isinstance(app.screen, ReaderScreen))


@run_async
async def test_the_status_bar_shortens_instead_of_cutting(answer_model: ScriptedModel) -> None:
    app = make_app(answer_model)
    async with app.run_test(size=(80, 24)) as pilot:
        await ask(pilot, "hi")
        bar = app.chat.status
        left, right = str(bar._left.content), str(bar._right.content)
        assert left.endswith(" · CPU 1 thread") and "…" in left  # the name gave way
        assert right.startswith("ctx ") and right.endswith(" tok/s") and "TTFT" not in right
        assert bar._left.region.width >= len(left)  # nothing cut at the edge
        await pilot.resize_terminal(160, 40)
        await pilot.pause()
        assert str(bar._left.content) == "DeepSeek-R1-Distill-Qwen-Scripted-Answer · CPU 1 thread"
        assert "TTFT" in str(bar._right.content)


@run_async
async def test_a_draft_is_never_thrown_away(answer_model: ScriptedModel) -> None:
    """ctrl+n keeps a typed draft for the new chat; quitting keeps it for the next start."""
    typed = "\n".join(f"line {i} of a long draft" for i in range(5000))
    app = make_app(answer_model)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await ask(pilot, "What is 2 + 2?")
        app.chat.prompt.insert(typed)
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert not app.chat.transcript.query(UserMessage)  # a new chat
        assert app.chat.prompt.text == typed
        assert any("draft stays" in n.message for n in app._notifications)
        await pilot.press("ctrl+q")
    assert (paths.data_dir() / "draft.txt").read_text() == typed
    again = make_app(answer_model)
    async with again.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert again.chat.prompt.text == typed
        assert (paths.data_dir() / "draft.txt").exists()  # (until it is sent: a kill keeps it)
        again.chat.prompt.clear()
        await pilot.press("ctrl+q")
    assert not (paths.data_dir() / "draft.txt").exists()  # an empty input leaves nothing
    (paths.data_dir() / "draft.txt").write_text("What is 2 + 2?")
    third = make_app(answer_model)
    async with third.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("enter")  # the draft put back is sent
        await settle(pilot)
        assert not (paths.data_dir() / "draft.txt").exists()  # and not put back again
