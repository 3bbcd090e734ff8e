"""The chat's pieces on their own: incremental wrapping, Markdown segmenting, event batching,
pane titles, preferences, and the streamed Markdown view (streamed == rendered at once)."""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import replace
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len
from textual.app import App, ComposeResult

from r1chat.config.file import Config
from r1chat.config.settings import resolve as chat_settings
from r1chat.core.events import AnswerDelta, Notice, ThinkingDelta, ThinkingDone
from r1chat.host.outcomes import AnswerChunk, ThinkingChunk, batch
from r1chat.tui import pane_titles
from r1chat.tui.preferences import prefs_of, save
from r1chat.tui.segments import Segmenter, opens_block, split
from r1chat.tui.widgets.markdown_view import MarkdownView
from r1chat.tui.wrap import WrappedText, wrap_raw

WORDS = st.text(alphabet="abc déf漢字 \n\t-.", max_size=300)


def chunks(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(points)]


def rows(w: WrappedText) -> list[str]:
    return [w.row(i) for i in range(len(w))]


# -- wrapping -------------------------------------------------------------------------------


@given(WORDS, st.lists(st.integers(0, 400), max_size=20), st.integers(1, 40))
@settings(max_examples=300, deadline=None)
def test_wrapping_as_it_streams_equals_wrapping_at_once(
    text: str, cuts: list[int], width: int
) -> None:
    whole = WrappedText(width)
    whole.append(text)
    streamed = WrappedText(width)
    for piece in chunks(text, cuts):
        streamed.append(piece)
    assert rows(streamed) == rows(whole)
    assert all(cell_len(r) <= max(width, 2) for r in rows(whole))  # 2: one wide character


@given(WORDS, st.integers(1, 40), st.integers(1, 40))
@settings(max_examples=200, deadline=None)
def test_rewrapping_for_a_new_width_equals_wrapping_fresh(text: str, w1: int, w2: int) -> None:
    resized = WrappedText(w1)
    resized.append(text)
    resized.set_width(w2)
    fresh = WrappedText(w2)
    fresh.append(text)
    assert rows(resized) == rows(fresh)


def test_wrap_keeps_every_character() -> None:
    text = "a long line of words that wraps around, and anotherverylongwordthatmustbesplit"
    assert "".join(wrap_raw(text, 12)) == text
    assert wrap_raw("averyverylongword", 5) == ["avery", "veryl", "ongwo", "rd"]


def test_leading_newlines_are_dropped_and_text_is_kept() -> None:
    w = WrappedText(20)
    w.append("\n\nOkay, so.\n")
    w.append("Next line.")
    assert rows(w) == ["Okay, so.", "Next line."]
    assert w.text == "Okay, so.\nNext line."


# -- segments -------------------------------------------------------------------------------

MARKDOWN = st.lists(
    st.sampled_from(
        [
            "# Title\n\n",
            "Some text here.\n\n",
            "- item\n- item two\n\n",
            "1. first\n\n",
            "```python\nx = 1\n\ny = 2\n```\n\n",
            "| a | b |\n|---|---|\n| 1 | 2 |\n\n",
            "> quoted\n\n",
            "    indented code\n\n",
            "plain line\n",
            "**bold** words ",
        ]
    ),
    max_size=30,
).map("".join)


@given(MARKDOWN, st.lists(st.integers(0, 2000), max_size=30), st.integers(0, 200))
@settings(max_examples=300, deadline=None)
def test_segments_streamed_equal_segments_at_once(
    text: str, cuts: list[int], min_chars: int
) -> None:
    segmenter, out = Segmenter(min_chars), []
    for piece in chunks(text, cuts):
        for new, part in segmenter.feed(piece):
            if new or not out:
                out.append(part)
            else:
                out[-1] += part
    if held := segmenter.flush():
        out[-1:] = [(out[-1] if out else "") + held]
    assert out == split(text, min_chars)
    assert "".join(out) == text


@given(MARKDOWN)
@settings(max_examples=200, deadline=None)
def test_segments_start_only_after_a_blank_line_with_a_block_opener(text: str) -> None:
    pieces = split(text, 0)
    for before, segment in itertools.pairwise(pieces):
        assert before.endswith("\n\n") or before.endswith("\n \n")
        assert opens_block(segment[:3])


def test_segments_do_not_cut_code_fences_lists_or_tables() -> None:
    fence = "```python\nx = 1\n\nTitle\n\ny = 2\n```\n\n"
    listing = "- a\n\n- b\n\n"
    table = "| a | b |\n|---|---|\n| 1 | 2 |\n\n"
    assert split(fence + listing + table + "After.", 0) == [fence + listing + table, "After."]


def test_long_answer_is_cut_in_bounded_pieces() -> None:
    text = "\n\n".join(f"## Part {i}\n\nText of part {i}.\n\n- a\n- b" for i in range(200))
    pieces = split(text, 0)
    assert len(pieces) > 200 and max(map(len, pieces)) < 100


# -- batching and titles ----------------------------------------------------------------------


def test_batch_joins_runs_of_deltas_per_job_and_keeps_order() -> None:
    items = [
        (1, ThinkingDelta("a")),
        (1, ThinkingDelta("b")),
        (1, ThinkingDone(1.0, 2)),
        (1, AnswerDelta("x")),
        (1, AnswerDelta("y")),
        (2, AnswerDelta("z")),
        (1, Notice("n")),
        (1, AnswerDelta("w")),
    ]
    assert batch(items) == [
        (1, ThinkingChunk("ab", 2)),
        (1, ThinkingDone(1.0, 2)),
        (1, AnswerChunk("xy", 2)),
        (2, AnswerChunk("z", 1)),
        (1, Notice("n")),
        (1, AnswerChunk("w", 1)),
    ]


def test_titles() -> None:
    assert pane_titles.live(12.44, 318) == "Thinking… 12.4s · 318 tokens"
    assert pane_titles.final(ThinkingDone(14.06, 402)) == "Thought for 14.1s · 402 tokens"
    assert pane_titles.final(ThinkingDone(3.0, 40, "budget")).endswith("cut by the thinking budget")
    skipped = ThinkingDone(0, 0, skipped=True)
    assert pane_titles.final(skipped) == "No reasoning (the model answered directly)"
    assert pane_titles.final(skipped, think=False) == "Reasoning off (no-think mode)"
    assert pane_titles.final(ThinkingDone(2.0, 9), stopped=True) == "Stopped after 2.0s · 9 tokens"
    stats = {"thinking_s": 1.25, "thinking_tokens": 30, "answer_tokens": 5}
    assert pane_titles.stored("r", stats, "stop") == "Thought for 1.2s · 30 tokens"
    assert pane_titles.stored("r", {**stats, "answer_tokens": 0}, "cancelled").startswith("Stopped")
    assert pane_titles.stored("r", None, None) == "Reasoning (the reply was interrupted)"


# -- preferences ------------------------------------------------------------------------------


def test_saved_sampling_applies_unless_the_command_line_says_otherwise() -> None:
    config = Config(
        {
            "sampling": {"temperature": 0.3, "max_tokens": 100},
            "reasoning": {"think": False, "math": True},
        }
    )
    s = chat_settings(config, {})
    assert (s.sampling.temperature, s.sampling.max_tokens, s.think, s.math) == (
        0.3,
        100,
        False,
        True,
    )
    s = chat_settings(config, {"temperature": 0.9})
    assert s.sampling.temperature == 0.9 and s.sampling.max_tokens == 100
    s = chat_settings(config, {"preset": "creative"})
    assert s.sampling.temperature == 0.7  # a named preset wins over saved values


def test_save_writes_only_what_changed(tmp_path: Path) -> None:
    config = Config({}, tmp_path / "config.toml")
    old = prefs_of(chat_settings(config, {"model": "cli.gguf", "temperature": 0.9}), "show")
    new = replace(old, top_p=0.9, display="collapsed", think_budget=512)
    assert save(config, old, new) == ["top_p", "display", "think_budget"]
    saved = Config.load(tmp_path / "config.toml")
    assert saved.section("sampling") == {"top_p": 0.9}  # not the command line's temperature
    assert saved.section("reasoning") == {"display": "collapsed", "think_budget": 512}
    assert saved.section("model") == {}  # nor its model


# -- the Markdown view ---------------------------------------------------------------------------


class _Host(App[None]):
    def __init__(self, view: MarkdownView) -> None:
        super().__init__()
        self.view = view

    def compose(self) -> ComposeResult:
        yield self.view


def _lines(view: MarkdownView) -> list[str]:
    return [view.render_line(y).text for y in range(view.line_count)]


def test_streamed_markdown_renders_like_the_whole_text(scripted_dir: Path) -> None:
    from tests.fixtures.scripted import write_long_model

    model = write_long_model(scripted_dir, 20, 400, seed=3)
    text = model.answer

    async def render(streamed: bool) -> list[str]:
        view = MarkdownView() if streamed else MarkdownView(text)
        app = _Host(view)
        async with app.run_test(size=(90, 40)) as pilot:
            if streamed:
                for i in range(0, len(text), 211):
                    view.append(text[i : i + 211])
                    if i % 5 == 0:
                        await pilot.pause()
                view.finish()
            await pilot.pause()
            return _lines(view)

    streamed = asyncio.run(render(True))
    whole = asyncio.run(render(False))
    assert streamed == whole
    assert any("Part 1" in line for line in whole)
    assert any("def step_1" in line for line in whole)  # the code block
    assert any("key 1" in line for line in whole)  # the table
    assert json.dumps(streamed)  # plain text lines


def test_reasoning_log_follows_unless_scrolled_up() -> None:
    from textual.containers import VerticalScroll

    from r1chat.tui.widgets.reasoning_log import ReasoningLog

    class Host(App[None]):
        def compose(self) -> ComposeResult:
            with VerticalScroll():
                yield ReasoningLog()

    async def run() -> None:
        app = Host()
        async with app.run_test(size=(60, 30)) as pilot:
            log = app.query_one(ReasoningLog)

            async def write(n: int) -> None:
                for i in range(n):
                    log.append(f"line {i}, a few words to wrap.\n")
                    await pilot.pause()

            await write(40)
            assert log.size.height == 16 and log.scroll_y == log.max_scroll_y > 0
            log.scroll_home(animate=False)  # the user reads from the top
            await write(10)
            assert log.scroll_y == 0
            log.scroll_end(animate=False)  # and comes back down: following again
            await pilot.pause()
            await write(10)
            assert log.scroll_y == log.max_scroll_y == log.row_count - 16

    asyncio.run(run())
