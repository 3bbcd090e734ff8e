"""Reading tool calls back from an answer as it streams, and folding a tool conversation
into text for models without tool tokens."""

from __future__ import annotations

import json

import pytest

from r1chat.core import r1
from r1chat.core.messages import Message, ToolCall
from r1chat.core.tools import CallReader, Tool, Tools, fold

MARKED = (
    f"\n\n{r1.CALLS_BEGIN}{r1.CALL_BEGIN}function{r1.TOOL_SEP}get_weather\n```json\n"
    f'{{"city": "Paris"}}\n```{r1.CALL_END}\n{r1.CALL_BEGIN}function{r1.TOOL_SEP}get_time\n'
    f"```json\n{{}}\n```{r1.CALL_END}{r1.CALLS_END}"
)
JSON = '\n{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}'


def read(text: str, step: int) -> tuple[list[str], list[tuple[str, str]]]:
    """Feed `text` in pieces of `step` characters: the text pieces out, and the calls."""
    reader = CallReader()
    texts, calls = [], []
    for i in range(0, len(text), step):
        out, got = reader.feed(text[i : i + step])
        texts.append(out)
        calls += got
    out, got = reader.finish()
    texts.append(out)
    calls += got
    return [t for t in texts if t], [(c.name, c.arguments) for c in calls]


@pytest.mark.parametrize("step", [1, 3, 1000])
def test_calls_are_read_however_the_answer_is_cut(step: int) -> None:
    assert read(MARKED, step) == ([], [("get_weather", '{"city": "Paris"}'), ("get_time", "{}")])
    assert read(JSON, step) == ([], [("get_weather", '{"city": "Paris"}')])


def test_a_marked_call_is_given_as_soon_as_it_ends() -> None:
    reader = CallReader()
    end = MARKED.index(r1.CALL_END) + len(r1.CALL_END)
    assert [c.name for c in reader.feed(MARKED[:end])[1]] == ["get_weather"]


def test_text_passes_at_once() -> None:
    reader = CallReader()
    assert reader.feed("\n\nThe") == ("\n\nThe", [])
    assert reader.feed(" weather") == (" weather", [])
    assert reader.finish() == ("", []) and not reader.called
    # "<" might begin the marker: held only until the next character says it does not
    texts, calls = read("<b>bold</b>", 1)
    assert texts[0] == "<b" and "".join(texts) == "<b>bold</b>" and calls == []


def test_json_that_is_not_a_call_is_text_at_the_end() -> None:
    texts, calls = read('{"answer": 4}', 2)
    assert "".join(texts) == '{"answer": 4}' and calls == []


def test_a_json_call_the_answer_ended_inside_is_dropped_not_text() -> None:
    reader = CallReader()
    assert reader.feed('{"tool_calls": [{"name": "get_wea') == ("", [])
    assert reader.finish() == ("", []) and reader.cut
    plain = CallReader()
    plain.feed("{not json at all")
    assert plain.finish() == ("{not json at all", []) and not plain.cut


def test_fold_writes_tools_calls_and_results_as_text() -> None:
    tools = Tools((Tool("get_weather", "Weather", json.dumps({"type": "object"})),))
    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    folded = fold(
        [
            Message("user", "Weather?"),
            Message("assistant", "", tool_calls=(call,)),
            Message("tool", "18 C", name="get_weather"),
            Message("tool", "windy", name="get_wind"),
        ],
        tools,
    )
    assert [m.role for m in folded] == ["system", "user", "assistant", "user"]
    assert '"name": "get_weather"' in folded[0].content and "tool_calls" in folded[0].content
    assert json.loads(folded[2].content)["tool_calls"][0]["arguments"] == {"city": "Paris"}
    assert folded[3].content == "Result of get_weather:\n18 C\n\nResult of get_wind:\nwindy"
    assert all(not m.tool_calls for m in folded)
