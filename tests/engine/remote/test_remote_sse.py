"""The SSE decoder and endpoint URL handling (unit tier)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from r1chat.core.errors import UsageError
from r1chat.engine.remote.http import Endpoint
from r1chat.engine.remote.sse import Event, SSEDecoder, SSEError
from r1chat.engine.remote.wording import Scrubber, error_detail


def decode(chunks: list[bytes]) -> list[Event]:
    d = SSEDecoder()
    out: list[Event] = []
    for c in chunks:
        out += d.feed(c)
    return out + d.finish()


STREAM = (
    b": ping - 2025-01-01\r\n\r\n"
    b'data: {"a": 1}\n\n'
    b"event: error\ndata: line one\ndata: line two\n\n"
    b"id: 7\nretry: 100\ndata:no-space\n\n"
    b"data: caf\xc3\xa9\r\rdata: [DONE]\n\n"
)
EXPECTED = [
    ("message", b'{"a": 1}'),
    ("error", b"line one\nline two"),
    ("message", b"no-space"),
    ("message", "café".encode()),
    ("message", b"[DONE]"),
]


def test_decodes_fields_comments_and_line_ends() -> None:
    assert decode([STREAM]) == EXPECTED


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_chunking_gives_the_same_events(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [STREAM[a:b] for a, b in zip([0, *points], [*points, len(STREAM)], strict=True)]
    assert decode(chunks) == EXPECTED


_text = st.text(
    alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)),
    max_size=12,
)
_events = st.lists(
    st.tuples(
        st.sampled_from(["message", "error"]),
        st.lists(_text, min_size=1, max_size=3),
        st.booleans(),  # a comment line before it
    ),
    max_size=8,
)


@given(_events, st.sampled_from(["\n", "\r\n", "\r"]), st.data())
def test_generated_streams_in_random_chunks(events, eol: str, data: st.DataObject) -> None:
    text = ""
    for name, lines, comment in events:
        if comment:
            text += ": keep-alive" + eol
        if name != "message":
            text += f"event: {name}{eol}"
        text += "".join(f"data: {line}{eol}" for line in lines) + eol
    raw = text.encode()
    cuts = sorted(set(data.draw(st.lists(st.integers(0, len(raw)), max_size=10))))
    chunks = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    expected = [(name, "\n".join(lines).encode()) for name, lines, _ in events]
    assert decode(chunks) == expected


def test_last_event_without_blank_line_is_flushed() -> None:
    assert decode([b"data: x"]) == [("message", b"x")]


def test_remembers_the_first_non_sse_line() -> None:
    d = SSEDecoder()
    assert d.feed(b"<html><body>hello</body></html>\n") == []
    assert d.junk == b"<html><body>hello</body></html>"


def test_refuses_an_endless_line() -> None:
    d = SSEDecoder()
    with pytest.raises(SSEError):
        for _ in range(5):
            d.feed(b"x" * (1024 * 1024))


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("localhost:8000", "http://localhost:8000/v1"),
        ("http://gpu:8000/", "http://gpu:8000/v1"),
        ("https://api.deepseek.com", "https://api.deepseek.com/v1"),
        ("http://h:1/v1/chat/completions", "http://h:1/v1"),
        ("http://h/openai/v1/", "http://h/openai/v1"),
    ],
)
def test_endpoint_urls(url: str, base: str) -> None:
    assert Endpoint.parse(url).base == base


def test_endpoint_hides_credentials_and_query() -> None:
    e = Endpoint.parse("https://user:s3cret@h.example/v1?api-key=abcdef")
    assert e.shown == "https://h.example/v1"
    assert e.params == (("api-key", "abcdef"),)


@pytest.mark.parametrize("url", ["", "ftp://h/v1", "http://:80", "http://h:port"])
def test_bad_endpoint_urls(url: str) -> None:
    with pytest.raises(UsageError):
        Endpoint.parse(url)


def test_error_detail_and_scrubbing() -> None:
    scrub = Scrubber("sk-secret-123456")
    body = b'{"error": {"message": "Incorrect API key provided: sk-secret-123456."}}'
    assert error_detail(body, scrub) == "Incorrect API key provided: ***."
    assert error_detail(b'{"detail": "Not Found"}', scrub) == "Not Found"
    assert error_detail(b"<html>oops</html>", scrub) == "an HTML page"
    assert "***" in scrub("Authorization: Bearer abcdefghijklmnop")
