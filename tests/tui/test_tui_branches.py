"""Branches in the chat: any earlier prompt edited and resent, regenerated replies kept,
`‹ 2/3 ›` on a turn with versions, left and right to switch; export, `history show` and
reopening follow the branch shown (real llama.cpp on a scripted model, the real app
through Pilot, the real CLI)."""

from __future__ import annotations

from textual import events
from textual.widgets import Static

from r1chat.session.dialogue import Dialogue
from r1chat.tui.app import ChatApp
from r1chat.tui.widgets.turns import AssistantTurn, UserMessage
from tests.fixtures.cli import r1chat
from tests.fixtures.scripted import ScriptedModel
from tests.tui.pilot import SIZE, ask, make_app, run_async, settle, wait_for


def prompts(app: ChatApp) -> list[str]:
    return [w.text for w in app.chat.transcript.query(UserMessage)]


def mark(widget: UserMessage | AssistantTurn) -> str:
    if isinstance(widget, AssistantTurn):
        return str(widget.answer.query_one(".turn-version", Static).render())
    return str(widget.render())


@run_async
async def test_edit_the_second_of_three_prompts_and_switch_branches(
    answer_model: ScriptedModel,
) -> None:
    app = make_app(answer_model)
    async with app.run_test(size=SIZE) as pilot:
        for prompt in ("one", "two", "three"):
            await ask(pilot, prompt)
        await pilot.press("alt+up")  # the last reply
        assert isinstance(app.focused, AssistantTurn)
        await pilot.press("up", "up", "up")  # its prompt, the reply before, its prompt
        assert isinstance(app.focused, UserMessage) and app.focused.text == "two"
        await pilot.press("e")
        assert app.chat.editing == 1 and app.chat.prompt.text == "two"
        assert "prompt 2" in str(app.chat.prompt.border_subtitle)
        await pilot.press(*" again", "enter")
        await settle(pilot)
        assert prompts(app) == ["one", "two again"]
        assert "‹ 2/2 ›" in mark(app.chat.transcript.query(UserMessage).last())
        cid = app.chat.session.dialogue.id
        assert cid is not None
        markdown = app.history.export_markdown(cid)
        assert "two again" in markdown and "three" not in markdown

        await pilot.press("alt+up", "up")  # the edited prompt
        await pilot.press("left")
        await pilot.pause()
        assert prompts(app) == ["one", "two", "three"]  # the branch it left, whole
        assert isinstance(app.focused, UserMessage) and app.focused.text == "two"
        assert "‹ 1/2 ›" in mark(app.focused)
        markdown = app.history.export_markdown(cid)
        assert "three" in markdown and "two again" not in markdown
        shown = r1chat("history", "show", str(cid))
        assert shown.returncode == 0 and "three" in shown.stdout
        assert "## You · version 1 of 2\ntwo\n" in shown.stdout
        assert "two again" not in shown.stdout
        assert [ex.prompt for ex in Dialogue.load(app.history, cid).exchanges] == prompts(app)

        await pilot.press("left")  # there is none before the first: nothing changes
        assert prompts(app) == ["one", "two", "three"]
        await pilot.press("right")
        await pilot.pause()
        assert prompts(app) == ["one", "two again"]
        exported = r1chat("history", "export", str(cid), "--format", "json")
        assert '"two again"' in exported.stdout and '"three"' not in exported.stdout

        await pilot.press("up")  # the first reply: regenerated there, later turns go
        assert isinstance(app.focused, AssistantTurn)
        await pilot.press("r")
        await settle(pilot)
        assert prompts(app) == ["one"]
        assert "‹ 2/2 ›" in mark(app.chat.transcript.query(AssistantTurn).last())
        assert len(app.chat.session.dialogue.exchanges) == 1

        await pilot.press("ctrl+s", *"three")  # a hit in a branch not shown opens that branch
        await wait_for(pilot, lambda: len(app.chat.sidebar.listing.children) == 1)
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: prompts(app) == ["one", "two", "three"])


@run_async
async def test_regenerate_twice_and_page_through_three_answers(
    answer_model: ScriptedModel,
) -> None:
    app = make_app(answer_model)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "hi")
        first = app.chat.session.dialogue.exchanges[0].reply_id
        for _ in range(2):
            await pilot.press("ctrl+r")
            await settle(pilot)
        assert len(app.chat.transcript.query(AssistantTurn)) == 1
        assert "‹ 3/3 ›" in mark(app.chat.transcript.query(AssistantTurn).last())
        replies = [app.chat.session.dialogue.exchanges[0].reply_id]
        await pilot.press("alt+up")
        for _ in range(2):
            await pilot.press("left")
            await pilot.pause()
            replies.append(app.chat.session.dialogue.exchanges[0].reply_id)
        assert replies[-1] == first and len(set(replies)) == 3  # three answers, all kept
        turn = app.chat.transcript.query(AssistantTurn).last()
        assert "‹ 1/3 ›" in mark(turn) and app.focused is turn
        stored = app.history.message(first)
        assert stored is not None and turn.answer.text == stored.content
        await pilot.press("escape")
        assert app.focused is app.chat.prompt


@run_async
async def test_keys_typed_in_one_burst_act_where_focus_went(answer_model: ScriptedModel) -> None:
    """A terminal delivers fast keys in one read: alt+up and the arrows after it are queued
    before the first has moved focus; they still walk the turns (not the input's Up)."""
    app = make_app(answer_model)
    async with app.run_test(size=SIZE) as pilot:
        for prompt in ("one", "two", "three"):
            await ask(pilot, prompt)
        for key in ("alt+up", "up", "up", "up", "e"):
            app.post_message(events.Key(key, key if len(key) == 1 else None))
        await pilot.pause(0.3)
        assert app.chat.editing == 1 and app.chat.prompt.text == "two"
