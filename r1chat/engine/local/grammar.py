"""The llama.cpp grammar that holds an answer to a JSON schema, built with
llama-cpp-python's own JSON-schema converter (cached: a schema is converted once)."""

from __future__ import annotations

import functools
import json
from typing import Any

from r1chat.core.errors import BadSchema

_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_JSON_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'
"""llama-cpp-python's converter lets a string hold raw control characters, which JSON
forbids; llama.cpp's own converter excludes them, as this does."""


@functools.lru_cache(maxsize=32)
def schema_grammar(schema: str) -> Any:
    """A `LlamaGrammar` for JSON text under `schema` (a JSON schema, as JSON text)."""
    from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf

    try:
        json.loads(schema)
        gbnf = json_schema_to_gbnf(schema).replace(_LOOSE_CHAR, _JSON_CHAR)
        return LlamaGrammar.from_string(gbnf, verbose=False)
    except Exception as e:  # the converter asserts, raises KeyError...: one line either way
        raise BadSchema(f"the JSON schema cannot be turned into a grammar: {e}") from None
