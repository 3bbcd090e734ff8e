"""llama.cpp grammars for the answer, built with llama-cpp-python's own JSON-schema
converter (cached: a schema or a tool set is converted once): JSON under a schema, or
text-or-tool-calls. Schemas are checked and rewritten first (`core.schemas.prepared`),
and numbers within bounds written out by `numbers.number_rule`, which the converter
would leave unbounded."""

from __future__ import annotations

import functools
import json
from typing import Any

from r1chat.core import r1
from r1chat.core.errors import BadSchema
from r1chat.core.schemas import RANGES, prepared
from r1chat.core.tools import Tool, Tools, calls_schema
from r1chat.engine.local.native import grammar_tools
from r1chat.engine.local.numbers import number_rule

_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_JSON_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'
"""llama-cpp-python's converter lets a string hold raw control characters, which JSON
forbids; llama.cpp's own converter excludes them, as this does."""


@functools.lru_cache(maxsize=32)
def schema_grammar(schema: str) -> Any:
    """A `LlamaGrammar` for JSON text under `schema` (a JSON schema, as JSON text)."""
    return _grammar(lambda c: c.visit(c.resolve_refs(prepared(json.loads(schema)), "stdin"), ""))


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
                params = c.resolve_refs(_parameters(tools, tool), "stdin")
                calls.append(literal(tool.name + FENCE_OPEN) + " " + c.visit(params, f"args{i}"))
            head, tail = literal(CALL_HEAD), literal(FENCE_CLOSE + r1.CALL_END)
            c._add_rule("call", f"{head} ({' | '.join(calls)}) {tail}")
            more = f" ({literal(chr(10))} call)*" if tools.parallel else ""
            c._add_rule("calls", f"{literal(r1.CALLS_BEGIN)} call{more} {literal(r1.CALLS_END)}")
        else:
            start = "{"
            for tool in tools.callable:
                _parameters(tools, tool)  # (a schema that cannot be held names its tool)
            c.visit(c.resolve_refs(prepared(calls_schema(tools)), "stdin"), "calls")
        if tools.text_allowed:
            c._add_rule("text", f"[^{start} \\t\\n] [^\\x00]*")
            c._add_rule("root", "[ \\t\\n]* (calls | text)")
        else:
            c._add_rule("root", "[ \\t\\n]* calls")

    return _grammar(build)


def _parameters(tools: Tools, tool: Tool) -> Any:
    """A tool's arguments' schema, prepared; one that cannot be held says which tool."""
    try:
        return prepared(json.loads(tool.parameters))
    except BadSchema as e:
        raise BadSchema(
            f"tools[{tools.offered.index(tool)}] ({tool.name}) parameters: {e}"
        ) from None


def _grammar(build: Any) -> Any:
    try:
        c = _converter()
        build(c)
        gbnf = c.format_grammar().replace(_LOOSE_CHAR, _JSON_CHAR)
        return grammar_tools().LlamaGrammar.from_string(gbnf, verbose=False)
    except BadSchema:
        raise
    except Exception as e:  # the converter asserts, raises KeyError...: one line either way
        raise BadSchema(f"the JSON schema cannot be turned into a grammar: {e}") from None


def _converter() -> Any:
    """llama-cpp-python's converter, writing numbers within their bounds (`RANGES`)."""
    tools = grammar_tools()

    class Converter(tools.SchemaConverter):  # type: ignore[name-defined]
        def visit(self, schema: Any, name: str) -> Any:
            if isinstance(schema, dict) and RANGES in schema:
                rule = f"{name}-" if name in tools.RESERVED_NAMES else name or "root"
                return self._add_rule(rule, number_rule(schema[RANGES]) + " space")
            return super().visit(schema, name)

    return Converter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
