"""Every answer given under a schema validates against it (`jsonschema`), over a corpus of
schemas whose keywords llama-cpp-python's converter alone would ignore (numeric bounds,
`allOf`, keywords beside `anyOf` or a type list, untyped keywords, tuples, unanchored
patterns); and each schema an answer cannot be held to is refused in one line naming the
keyword and where it is. Answers come from real llama.cpp grammars over the R1-vocabulary
model with random weights, whose answers are as arbitrary as the grammar allows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from r1chat.core.errors import BadSchema
from r1chat.core.events import Done
from r1chat.core.messages import Message
from r1chat.core.request import Control, Request, Sampling
from r1chat.core.schemas import check
from r1chat.core.turn import Guards, run_turn
from r1chat.engine.local.engine import LocalEngine
from r1chat.launch.local import open_local

DRAFT_4 = "http://json-schema.org/draft-04/schema#"
DIGIT = {"type": "integer", "minimum": 0, "maximum": 9}
KIND_A = {
    "type": "object",
    "properties": {"kind": {"const": "a"}, "n": {"type": "integer", "minimum": 1, "maximum": 5}},
    "required": ["kind", "n"],
    "additionalProperties": False,
}
KIND_B = {
    "type": "object",
    "properties": {"kind": {"const": "b"}, "flag": {"type": "boolean"}},
    "required": ["kind", "flag"],
    "additionalProperties": False,
}
HELD = {
    "integer range": {"type": "integer", "minimum": 5, "maximum": 12},
    "agents' counts": {"type": "integer", "exclusiveMinimum": 0, "maximum": 9007199254740991},
    "negative integers": {"type": "integer", "minimum": -40, "maximum": -3},
    "number range": {"type": "number", "minimum": -2.5, "maximum": 3},
    "open unit interval": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    "draft 4 exclusive": {
        "$schema": DRAFT_4,
        "type": "number",
        "minimum": 0,
        "exclusiveMinimum": True,
        "maximum": 10,
    },
    "whole multiples": {"type": "integer", "multipleOf": 1, "minimum": 0, "maximum": 3},
    "allOf objects": {
        "allOf": [
            {"type": "object", "properties": {"a": DIGIT}, "required": ["a"]},
            {"properties": {"b": {"type": "boolean"}}, "required": ["b"]},
        ]
    },
    "allOf bounds": {"allOf": [{"type": "integer", "minimum": 3}, {"maximum": 7}]},
    "keywords beside anyOf": {
        "type": "object",
        "properties": {"x": DIGIT, "y": {"type": "boolean"}},
        "additionalProperties": False,
        "anyOf": [{"required": ["x"]}, {"required": ["y"]}],
    },
    "type list with bounds": {"type": ["string", "null"], "maxLength": 5},
    "nullable range": {"type": ["integer", "null"], "minimum": 1, "maximum": 3},
    "untyped length": {"maxLength": 4},
    "untyped bounds": {"minimum": 2, "maximum": 4},
    "enum of a type": {"type": "string", "enum": ["a", "b", 1, None]},
    "const": {"const": "yes"},
    "bounded array": {"type": "array", "items": DIGIT, "minItems": 2, "maxItems": 3},
    "tuple": {"type": "array", "prefixItems": [{"type": "boolean"}, DIGIT]},
    "draft 4 tuple": {
        "$schema": DRAFT_4,
        "type": "array",
        "items": [{"enum": [1]}, {"type": "boolean"}],
    },
    "no items": {"type": "array", "items": False},
    "unanchored pattern": {"type": "string", "pattern": "[a-c]{2}"},
    "string length": {"type": "string", "minLength": 2, "maxLength": 4},
    "discriminated oneOf": {"oneOf": [KIND_A, KIND_B]},
    "number or short text": {
        "anyOf": [{"type": "integer", "minimum": 10, "maximum": 20}, {"maxLength": 3}]
    },
    "minProperties met by required": {
        "type": "object",
        "properties": {"a": {"type": "boolean"}},
        "required": ["a"],
        "minProperties": 1,
    },
    "maxProperties of a closed object": {
        "type": "object",
        "properties": {"a": {"type": "boolean"}, "b": {"type": "boolean"}},
        "additionalProperties": False,
        "maxProperties": 2,
    },
    "propertyNames a closed object meets": {
        "type": "object",
        "properties": {"ab": {"type": "boolean"}},
        "required": ["ab"],
        "additionalProperties": False,
        "propertyNames": {"pattern": "^[a-z]+$"},
    },
    "a tool's arguments": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "timeout": {"type": "number", "maximum": 600000, "description": "ms"},
            "limit": {"type": "integer", "exclusiveMinimum": 0, "maximum": 9007199254740991},
            "mode": {"type": "string", "enum": ["fast", "slow"]},
        },
        "required": ["timeout", "limit", "mode"],
        "additionalProperties": False,
        "propertyNames": {"type": "string"},
    },
}

REFUSED = {
    "minimum over maximum": (
        {"type": "integer", "minimum": 5, "maximum": 1},
        "minimum: minimum 5, maximum 1: no integer fits",
    ),
    "allOf of two types": (
        {"allOf": [{"type": "string"}, {"type": "integer"}]},
        "allOf: type string and type integer have no value in common",
    ),
    "a huge minItems": (
        {"type": "object", "properties": {"t": {"type": "array", "minItems": 1e8}}},
        "minItems at properties.t: 100,000,000: no reply is that long (at most 16,384)",
    ),
    "an empty enum": ({"enum": []}, "enum: empty, so no value fits"),
    "an unknown type": ({"type": "bogus"}, "type: 'bogus' is not a JSON Schema type"),
    "a reference to itself": (
        {"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/a"}}},
        "refers to itself",
    ),
    "a reference elsewhere": ({"$ref": "https://example.com/s.json"}, "only references inside"),
    "multipleOf": ({"type": "number", "multipleOf": 0.5}, "multipleOf: r1chat cannot hold"),
    "uniqueItems": ({"type": "array", "items": DIGIT, "uniqueItems": True}, "uniqueItems: r1chat"),
    "not": ({"not": {"type": "string"}}, "not: r1chat cannot hold an answer to it"),
    "if": ({"if": {"type": "string"}, "then": {"maxLength": 2}}, "if: r1chat cannot hold"),
    "patternProperties": (
        {"type": "object", "patternProperties": {"^a": DIGIT}},
        "patternProperties: r1chat cannot hold",
    ),
    "propertyNames of an open object": (
        {"type": "object", "propertyNames": {"pattern": "^a"}},
        "propertyNames: the names of additional properties cannot be held to it",
    ),
    "minProperties over required": ({"type": "object", "minProperties": 2}, "minProperties:"),
    "pattern beside a length": (
        {"type": "string", "pattern": "^a+$", "maxLength": 3},
        "minLength: beside pattern",
    ),
    "bounds inside one whole number": (
        {"type": "number", "minimum": 0.2, "maximum": 0.4},
        "none lies inside these",
    ),
    "a required property it forbids": (
        {
            "type": "object",
            "properties": {"a": DIGIT},
            "required": ["b"],
            "additionalProperties": False,
        },
        "required: 'b' is not in properties, and additionalProperties is false",
    ),
    "false": ({"type": "object", "properties": {"a": False}, "required": ["a"]}, "false, so no"),
    "lengths crossed": ({"type": "string", "minLength": 5, "maxLength": 2}, "no string fits"),
    "empty anyOf": ({"anyOf": []}, "anyOf: must be a non-empty list of schemas"),
    "allOf a closed object with more required": (
        {
            "allOf": [
                {"type": "object", "properties": {"a": DIGIT}, "additionalProperties": False},
                {"required": ["b"]},
            ]
        },
        "no object fits",
    ),
}


@pytest.fixture(scope="module")
def engine(r1_vocab_path: Path) -> LocalEngine:
    return open_local(r1_vocab_path, n_ctx=2048, gpu_layers=0, threads=1)


def answer(engine: LocalEngine, schema: Any, seed: int) -> Done:
    sampling = Sampling(temperature=1.0, seed=seed, max_tokens=300, schema=json.dumps(schema))
    request = Request((Message("user", "Answer."),), sampling, think=False)
    done = list(run_turn(engine, request, Control(), Guards()))[-1]
    assert isinstance(done, Done)
    return done


@pytest.mark.parametrize("name", list(HELD))
def test_every_answer_validates(engine: LocalEngine, name: str) -> None:
    schema = HELD[name]
    for seed in (1, 2, 3):
        done = answer(engine, schema, seed)
        assert done.finish_reason == "stop", done.content
        jsonschema.validate(json.loads(done.content), schema)  # (its draft, by `$schema`)


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_schema_that_cannot_be_held_is_refused_by_name(name: str) -> None:
    schema, said = REFUSED[name]
    with pytest.raises(BadSchema) as refused:
        check(schema)
    assert said in str(refused.value)
    assert "\n" not in str(refused.value)
