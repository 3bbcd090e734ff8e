"""Token-level view of a llama.cpp vocabulary: pieces, end tokens, and safe text encoding.

User text must never turn into control or user-defined tokens: llama.cpp matches
user-defined tokens such as `</think>` even with special parsing off, so a pasted
`</think>` would end the model's reasoning (prompt injection). `encode_text` splits any
such match apart and re-encodes the pieces as plain text.

Given a `Reading`, long text is read in pieces (`PIECE` characters, cut between two words,
where a BPE pre-tokenizer cuts anyway, so the tokens are the same) and counted, so that a
server stops reading a prompt once it is past the context or its client is gone.

Long text is remembered (`Known`): a conversation's next prompt repeats every message of
the last, and a coding agent's repeats a system prompt and tool list of 10-20k tokens each
turn, which R1's tokenizer reads at 2-4 ms per 1,000 tokens. Only what is new is read.
"""

from __future__ import annotations

import ctypes
import re
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator

from r1chat.core import r1
from r1chat.core.request import Reading
from r1chat.engine.local.native import Model, lib

PIECE = 32 << 10
"""Characters of text read at once under a `Reading`."""
ATTR_CONTROL = 1 << 3
ATTR_USER_DEFINED = 1 << 4
SPECIAL_ATTRS = ATTR_CONTROL | ATTR_USER_DEFINED
KNOWN_TOKENS = 1 << 20
"""The most tokens of encoded text remembered (4 MiB of ids), the least recently used
forgotten first."""
KNOWN_SHORTEST = 256
"""Characters: shorter text is encoded afresh (as fast as a lookup)."""


class Vocab:
    def __init__(self, llm: Model) -> None:
        c = self._lib = lib()
        self._llm = llm
        self._vocab = llm.vocab
        self.bos: int = llm.bos
        self.eos: int = llm.eos
        self.add_bos: bool = bool(c.llama_vocab_get_add_bos(self._vocab))
        self._bpe = c.llama_vocab_type(self._vocab) == c.LLAMA_VOCAB_TYPE_BPE
        self._pieces: dict[int, bytes] = {}
        self._eog: dict[int, bool] = {}
        markers = [self.special_id(m) for m in r1.TOOL_MARKERS]
        self.tool_tokens = all(t is not None for t in markers)
        """Whether the vocabulary has DeepSeek's tool-call tokens (R1-0528)."""
        self._spoken = {t for t in markers if t is not None}
        self._known = Known(KNOWN_TOKENS)

    def is_special(self, token: int) -> bool:
        return bool(self._lib.llama_vocab_get_attr(self._vocab, token) & SPECIAL_ATTRS)

    def is_eog(self, token: int) -> bool:
        eog = self._eog.get(token)
        if eog is None:
            eog = self._eog[token] = bool(self._lib.llama_vocab_is_eog(self._vocab, token))
        return eog

    def piece(self, token: int) -> bytes:
        """The bytes a generated token adds to the text (control tokens add nothing, but
        for DeepSeek's tool-call markers: a call is read back from them)."""
        piece = self._pieces.get(token)
        if piece is None:
            spoken = token in self._spoken
            piece = self._pieces[token] = self._to_piece(token, special=spoken)
        return piece

    def _to_piece(self, token: int, *, special: bool) -> bytes:
        # llama-cpp-python's own detokenize garbles pieces over 32 bytes; ask for the size.
        size = 64
        while True:
            buf = ctypes.create_string_buffer(size)
            n = self._lib.llama_token_to_piece(self._vocab, token, buf, size, 0, special)
            if n >= 0:
                return buf.raw[:n]
            size = -n

    def render(self, tokens: Iterable[int]) -> str:
        """The exact text of `tokens`, special tokens spelled out."""
        data = b"".join(self._to_piece(t, special=True) for t in tokens)
        return data.decode("utf-8", errors="replace")

    def special_id(self, text: str) -> int | None:
        """The id of the special token spelled `text`, if the vocabulary has one."""
        ids = self._llm.tokenize(text.encode(), add_bos=False, special=True)
        return ids[0] if len(ids) == 1 and self.is_special(ids[0]) else None

    def encode_markup(self, text: str, reading: Reading | None = None) -> list[int]:
        """Encode text we wrote (template parts), special tokens allowed."""

        def encode() -> list[int]:
            ids = self._llm.tokenize(text.encode(), add_bos=False, special=True) if text else []
            if reading is not None:
                reading.add(len(ids))
            return ids

        return self._known.get(True, text, reading, encode)

    def encode_text(self, text: str, reading: Reading | None = None) -> list[int]:
        """Encode user-supplied text: never yields a control or user-defined token; under
        `reading`, piece by piece (see the module's docstring)."""

        def encode() -> list[int]:
            if reading is None:
                return self._encode_text(text)
            out: list[int] = []
            for piece in _pieces(text) if self._bpe else [text]:
                ids = self._encode_text(piece)
                reading.add(len(ids))
                out += ids
            return out

        return self._known.get(False, text, reading, encode)

    def _encode_text(self, text: str) -> list[int]:
        if not text:
            return []
        ids: list[int] = self._llm.tokenize(text.encode(), add_bos=False, special=False)
        specials = {t for t in ids if self.is_special(t)}
        if not specials:
            return ids
        spelled = sorted({self.render([t]) for t in specials}, key=len, reverse=True)
        pattern = re.compile("|".join(re.escape(s) for s in spelled if s))
        out: list[int] = []
        pos = 0
        for m in pattern.finditer(text):
            out += self._encode_text(text[pos : m.start()])
            out += self._encode_broken(m.group())
            pos = m.end()
        out += self._encode_text(text[pos:])
        return out

    def _encode_broken(self, spelled: str) -> list[int]:
        """Encode a special token's spelling as two text halves, so it cannot match."""
        if len(spelled) == 1:
            ids = self._llm.tokenize(spelled.encode(), add_bos=False, special=False)
            return [t for t in ids if not self.is_special(t)]
        cut = 1 if len(spelled) < 4 else len(spelled) // 2
        return self._encode_text(spelled[:cut]) + self._encode_text(spelled[cut:])


class Known:
    """Text's token ids, as it was last encoded (at most `most` tokens in all, the least
    recently used forgotten first); thread-safe."""

    def __init__(self, most: int) -> None:
        self._most, self._held = most, 0
        self._ids: OrderedDict[tuple[bool, str], array[int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, special: bool, text: str, reading: Reading | None, encode: Callable[[], list[int]]
    ) -> list[int]:
        """`text`'s ids (`special`: markup), from `encode()` unless remembered; a
        remembered text is counted in `reading` as a whole (it raises as reading does)."""
        if len(text) < KNOWN_SHORTEST:
            return encode()
        key = (special, text)
        with self._lock:
            known = self._ids.get(key)
            if known is not None:
                self._ids.move_to_end(key)
        if known is not None:
            if reading is not None:
                reading.add(len(known))
            return known.tolist()
        ids = encode()
        if len(ids) <= self._most:
            with self._lock:
                if key not in self._ids:
                    self._ids[key] = array("i", ids)
                    self._held += len(ids)
                while self._held > self._most:
                    self._held -= len(self._ids.popitem(last=False)[1])
        return ids


_WORD_GAP = re.compile(r"(?<=\S) (?=\S)")


def _pieces(text: str) -> Iterator[str]:
    """`text` in pieces of about `PIECE` characters, each cut before a single space
    between two words (text without such a gap stays whole)."""
    start = 0
    while len(text) - start > PIECE:
        gap = _WORD_GAP.search(text, start + PIECE)
        if gap is None:
            break
        yield text[start : gap.start()]
        start = gap.start()
    yield text[start:]
