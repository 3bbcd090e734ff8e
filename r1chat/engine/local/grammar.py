"""llama.cpp grammars for the answer, built with llama-cpp-python's own JSON-schema
converter (cached: a schema or a tool set is converted once): JSON under a schema, or
text-or-tool-calls."""

from __future__ import annotations

import functools
import json
from typing import Any

from r1chat.core import r1
from r1chat.core.errors import BadSchema
from r1chat.core.tools import Tools, calls_schema

_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_JSON_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'
"""llama-cpp-python's converter lets a string hold raw control characters, which JSON
forbids; llama.cpp's own converter excludes them, as this does."""


_ANNOTATIONS = {
    *("description", "title", "examples", "default", "$comment", "deprecated"),
    *("readOnly", "writeOnly", "$schema", "$id"),
}
"""Keywords that say what a value means, not what it may be: llama-cpp-python's converter
refuses a schema made only of them (`{"description": "any value"}`, which agents' tools
use), so they are dropped before it sees the schema."""
_SCHEMA_MAPS = {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
_SCHEMA_LISTS = {"anyOf", "oneOf", "allOf", "prefixItems"}
_SCHEMA_ONE = {
    *("items", "additionalProperties", "not", "contains", "propertyNames", "if", "then"),
    *("else", "additionalItems", "unevaluatedProperties", "unevaluatedItems"),
}


MOST_REPEATS = 16_384
"""The converter writes a bound out as that many copies of a rule: past this many,
llama.cpp's grammar takes seconds to build, and crashes soon after (Claude Code's Workflow
tool says `maxLength: 524288`). An upper bound past it is left to `max_tokens` (a reply
that long is 4,000 tokens and more), a lower bound past it refused (no reply reaches it)."""
_UPPER = ("maxLength", "maxItems", "maxProperties")
_LOWER = ("minLength", "minItems", "minProperties")


def plain(schema: Any) -> Any:
    """`schema` as the converter can take it: without its annotations (`_ANNOTATIONS`),
    upper bounds past `MOST_REPEATS` left out (a lower bound past it is `BadSchema`),
    every subschema too."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _ANNOTATIONS:
            continue
        if isinstance(value, int) and value > MOST_REPEATS:
            if key in _UPPER:
                continue
            if key in _LOWER:
                raise BadSchema(
                    f"{key} {value:,}: no reply is that long (at most {MOST_REPEATS:,})"
                )
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            value = {name: plain(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            value = [plain(sub) for sub in value]
        elif key in _SCHEMA_ONE:
            value = plain(value)
        out[key] = value
    return out


@functools.lru_cache(maxsize=32)
def schema_grammar(schema: str) -> Any:
    """A `LlamaGrammar` for JSON text under `schema` (a JSON schema, as JSON text)."""
    return _grammar(lambda c: c.visit(c.resolve_refs(plain(json.loads(schema)), "stdin"), ""))


CALL_HEAD = r1.CALL_BEGIN + "function" + r1.TOOL_SEP
FENCE_OPEN, FENCE_CLOSE = "\n```json\n", "\n```"


@functools.lru_cache(maxsize=32)
def tools_grammar(tools: Tools, native: bool) -> Any:
    """A `LlamaGrammar` for an answer that calls `tools.callable` (or, where the choice
    allows, is text that does not start like a call): in R1-0528's markers when `native`,
    else the JSON object of `r1chat.core.tools.calls_schema`. Leading blank space is free."""

    def build(c: Any) -> None:
        if native:
            start = "<"
            literal = c._format_literal
            calls = []
            for i, tool in enumerate(tools.callable):
                params = c.resolve_refs(plain(json.loads(tool.parameters)), "stdin")
                calls.append(literal(tool.name + FENCE_OPEN) + " " + c.visit(params, f"args{i}"))
            head, tail = literal(CALL_HEAD), literal(FENCE_CLOSE + r1.CALL_END)
            c._add_rule("call", f"{head} ({' | '.join(calls)}) {tail}")
            more = f" ({literal(chr(10))} call)*" if tools.parallel else ""
            c._add_rule("calls", f"{literal(r1.CALLS_BEGIN)} call{more} {literal(r1.CALLS_END)}")
        else:
            start = "{"
            c.visit(c.resolve_refs(plain(calls_schema(tools)), "stdin"), "calls")
        if tools.text_allowed:
            c._add_rule("text", f"[^{start} \\t\\n] [^\\x00]*")
            c._add_rule("root", "[ \\t\\n]* (calls | text)")
        else:
            c._add_rule("root", "[ \\t\\n]* calls")

    return _grammar(build)


def _grammar(build: Any) -> Any:
    from llama_cpp.llama_grammar import LlamaGrammar, SchemaConverter

    try:
        c = SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
        build(c)
        gbnf = c.format_grammar().replace(_LOOSE_CHAR, _JSON_CHAR)
        return LlamaGrammar.from_string(gbnf, verbose=False)
    except Exception as e:  # the converter asserts, raises KeyError...: one line either way
        raise BadSchema(f"the JSON schema cannot be turned into a grammar: {e}") from None
