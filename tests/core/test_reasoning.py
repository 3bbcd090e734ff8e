"""The streaming reasoning splitter against its one-shot definition."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from r1chat.core.reasoning import ANSWER, END, THINKING, Splitter, split_text


def stream(text_chunks: list[str], *, opened: bool) -> tuple[str, str, int]:
    s = Splitter(opened=opened)
    pieces = [p for chunk in text_chunks for p in s.feed(chunk)] + s.finish()
    thinking = "".join(t for k, t in pieces if k == THINKING)
    answer = "".join(t for k, t in pieces if k == ANSWER)
    ends = sum(1 for k, _ in pieces if k == END)
    return thinking, answer, ends


def chunked(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    edges = [0, *points, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(edges)]


# Texts made mostly of the pieces that matter, so tags and their fragments are common.
fragments = st.sampled_from(
    [
        "<think>",
        "</think>",
        "<",
        "</",
        "<th",
        "think>",
        "/think>",
        "\n",
        "\n\n",
        " ",
        "a",
        "Okay",
        "answer",
        ">",
        "<thi",
        "</thin",
        "é",
        "😀",
    ]
)
texts = st.lists(fragments | st.text(max_size=5), max_size=30).map("".join)


@settings(max_examples=600, deadline=None)
@given(text=texts, cuts=st.lists(st.integers(min_value=0), max_size=12), opened=st.booleans())
def test_any_chunking_matches_the_one_shot_split(text: str, cuts: list[int], opened: bool):
    thinking, answer, _closed = split_text(text, opened=opened)
    got_thinking, got_answer, ends = stream(chunked(text, cuts), opened=opened)
    assert (got_thinking, got_answer) == (thinking, answer)
    assert ends <= 1


@settings(max_examples=200, deadline=None)
@given(text=texts, opened=st.booleans())
def test_char_by_char_matches_the_one_shot_split(text: str, opened: bool):
    thinking, answer, _ = split_text(text, opened=opened)
    assert stream(list(text), opened=opened)[:2] == (thinking, answer)


def test_prompt_opened_reasoning():
    assert split_text("Okay, 2+2.\n</think>\n\nIt is **4**.", opened=True) == (
        "Okay, 2+2.",
        "It is **4**.",
        True,
    )


def test_opening_tag_in_output():
    assert split_text("<think>\nhmm\n</think>\n\n4", opened=False) == ("hmm", "4", True)
    assert split_text("\n<think>hmm</think>4", opened=True) == ("hmm", "4", True)


def test_no_tags_without_opened_prompt_is_all_answer():
    assert split_text("Just an answer </think> here", opened=False) == (
        "",
        "Just an answer </think> here",
        False,
    )


def test_empty_reasoning():
    assert split_text("\n\n</think>\n\nDirect.", opened=True) == ("", "Direct.", True)


def test_cut_off_before_close_is_all_reasoning():
    assert split_text("still thinking about", opened=True) == ("still thinking about", "", False)
    assert stream(["still thi", "nking about"], opened=True) == ("still thinking about", "", 1)


def test_text_before_the_opening_tag_is_reasoning():
    assert split_text("Hmm. <think>ok</think>yes", opened=True) == ("Hmm. ok", "yes", True)


def test_tags_split_at_every_byte():
    text = "<think>\nabc\n</think>\n\nxyz"
    for i in range(len(text) + 1):
        for j in range(i, len(text) + 1):
            assert stream([text[:i], text[i:j], text[j:]], opened=False)[:2] == ("abc", "xyz")


def test_server_marked_channels():
    s = Splitter(opened=False)
    pieces = s.feed_thinking("  why ") + s.feed_thinking("not\n") + s.feed_answer("\nbecause")
    assert pieces == [(THINKING, "why"), (THINKING, " not"), (END, ""), (ANSWER, "because")]
